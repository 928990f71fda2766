import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig, type Rolldown } from 'vite';

/**
 * litegraph's number widget evaluates what is typed into its prompt with a direct `eval` (inside a
 * try, so under the editor's CSP, which forbids eval, it just falls back to Number()). The bundler
 * warns about it on every build and nobody can act on it: that one warning, for that one module,
 * is dropped; every other warning still prints.
 */
export function isLitegraphEval(log: Rolldown.RolldownLog): boolean {
  return log.code === 'EVAL' && /[\\/]@comfyorg[\\/]litegraph[\\/]/.test(log.id ?? log.loc?.file ?? '');
}

// The editor is built into editor/dist, which the server serves at /. In development,
// `npx vite editor` proxies the API and websocket to a server started with `npm start`.
export default defineConfig({
  root: import.meta.dirname,
  plugins: [svelte()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1200,
    rolldownOptions: {
      onLog(level, log, handler) {
        if (level === 'warn' && isLitegraphEval(log)) return;
        handler(level, log);
      },
    },
  },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:8188',
      '/ws': { target: 'ws://127.0.0.1:8188', ws: true },
    },
  },
});
