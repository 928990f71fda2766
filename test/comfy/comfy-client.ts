/**
 * A ComfyUI client script, written against ComfyUI's documented API only (the shape of its
 * script_examples/websockets_api_example.py): open `/ws?clientId=`, upload the input with
 * POST /upload/image, POST /prompt with `client_id`, read messages until `executing` says node
 * null for our prompt, then GET /history/{prompt_id} and download every image with GET /view.
 * Like Python's urllib, it POSTs the prompt as a plain body without saying it is JSON.
 *
 *   npx tsx test/comfy/comfy-client.ts http://127.0.0.1:8188 prompt.json [image.png]
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WebSocket } from 'ws';

export interface ClientRun {
  promptId: string;
  /** Message types in the order they came, for this prompt (status messages included). */
  messages: Array<{ type: string; data: Record<string, unknown> }>;
  /** Downloaded images by ComfyUI node id. */
  images: Record<string, Buffer[]>;
  history: Record<string, unknown>;
}

export async function runComfyClient(server: string, prompt: Record<string, { class_type: string; inputs: Record<string, unknown> }>, upload?: { name: string; bytes: Uint8Array }, headers: Record<string, string> = {}): Promise<ClientRun> {
  const clientId = randomUUID();
  const wsUrl = `${server.replace(/^http/, 'ws')}/ws?clientId=${clientId}`;
  const ws = new WebSocket(wsUrl, { headers });
  const messages: ClientRun['messages'] = [];
  const queue: Array<(m: ClientRun['messages'][number]) => void> = [];
  ws.on('message', (data, binary) => {
    if (binary) return; // previews
    const m = JSON.parse(String(data)) as ClientRun['messages'][number];
    messages.push(m);
    for (const f of queue.splice(0)) f(m);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  try {
    if (upload) {
      const form = new FormData();
      form.append('image', new Blob([upload.bytes as Uint8Array<ArrayBuffer>]), upload.name);
      form.append('overwrite', 'true');
      const up = await fetch(`${server}/upload/image`, { method: 'POST', body: form, headers });
      if (!up.ok) throw new Error(`upload: ${up.status} ${await up.text()}`);
      const stored = (await up.json()) as { name: string };
      for (const node of Object.values(prompt)) if (node.class_type === 'LoadImage') node.inputs.image = stored.name;
    }
    const res = await fetch(`${server}/prompt`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
      body: JSON.stringify({ prompt, client_id: clientId }),
    });
    const queued = (await res.json()) as { prompt_id?: string; error?: unknown; node_errors?: unknown };
    if (!res.ok || !queued.prompt_id) throw new Error(`prompt refused: ${res.status} ${JSON.stringify(queued)}`);
    const promptId = queued.prompt_id;
    const seen = (): boolean => messages.some((m) => m.type === 'executing' && m.data.node === null && m.data.prompt_id === promptId);
    while (!seen()) await new Promise<ClientRun['messages'][number]>((resolve) => queue.push(resolve));
    const history = (await (await fetch(`${server}/history/${promptId}`, { headers })).json()) as Record<string, { outputs: Record<string, { images?: Array<{ filename: string; subfolder: string; type: string }> }> }>;
    const images: ClientRun['images'] = {};
    for (const [nodeId, output] of Object.entries(history[promptId]?.outputs ?? {})) {
      for (const image of output.images ?? []) {
        const q = new URLSearchParams({ filename: image.filename, subfolder: image.subfolder, type: image.type });
        const got = await fetch(`${server}/view?${q.toString()}`, { headers });
        if (!got.ok) throw new Error(`view ${image.filename}: ${got.status}`);
        (images[nodeId] ??= []).push(Buffer.from(await got.arrayBuffer()));
      }
    }
    return { promptId, messages: messages.filter((m) => m.type === 'status' || m.data.prompt_id === promptId), images, history };
  } finally {
    ws.close();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const [server = 'http://127.0.0.1:8188', promptFile, imageFile] = process.argv.slice(2);
  if (!promptFile) throw new Error('usage: comfy-client.ts SERVER prompt.json [image.png]');
  const prompt = JSON.parse(fs.readFileSync(promptFile, 'utf8')) as Parameters<typeof runComfyClient>[1];
  const upload = imageFile ? { name: path.basename(imageFile), bytes: fs.readFileSync(imageFile) } : undefined;
  const run = await runComfyClient(server, prompt, upload);
  for (const [node, list] of Object.entries(run.images)) {
    list.forEach((bytes, i) => {
      const out = `comfy_${run.promptId.slice(0, 8)}_${node}_${i}.png`;
      fs.writeFileSync(out, bytes);
      process.stdout.write(`${out}\n`);
    });
  }
}
