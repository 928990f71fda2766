import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

// The editor is built into editor/dist, which the server serves at /. In development,
// `npx vite editor` proxies the API and websocket to a server started with `npm start`.
export default defineConfig({
  root: import.meta.dirname,
  plugins: [svelte()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1200 },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:8188',
      '/ws': { target: 'ws://127.0.0.1:8188', ws: true },
    },
  },
});
