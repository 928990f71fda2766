import type { Request } from 'express';

/**
 * The page a browser gets instead of the editor when the server needs its access token and the
 * visit has none (or a wrong one): what to do, and a field for the token. Its form is a plain GET
 * to the same address with `?token=`, which the auth guard turns into the cookie and a redirect to
 * the editor; the page has no script and nothing of the editor, so it gives nothing away.
 */

/** A browser opening a page (not an API call, not a script's fetch): it gets the page, not JSON. */
export function wantsTokenPage(req: Request): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (req.path.startsWith('/api/') || req.path === '/api' || req.path === '/ws') return false;
  return /\btext\/html\b/.test(req.headers.accept ?? '');
}

/** Only inline styles and a form to this origin: no scripts, frames, images or other sources. */
export const TOKEN_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const ICON =
  "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24'%3E%3Crect x='1' y='1' width='22' height='22' rx='6' fill='%236e8ff8'/%3E%3Cpath d='M6 15.5c2-4.5 4-4.5 6 0s4 4.5 6 0' fill='none' stroke='%230d1a2e' stroke-width='2.2' stroke-linecap='round'/%3E%3Ccircle cx='8' cy='8' r='1.6' fill='%230d1a2e'/%3E%3C/svg%3E";

const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page; `wrong` when the visit carried a token that is not this server's. */
export function tokenPage(path: string, wrong: boolean): string {
  const note = wrong ? `<p class="wrong" role="alert">That is not this server's token. Check the address in the console and try again.</p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Access token needed · SUPIR Studio</title>
<link rel="icon" href="${ICON}">
<style>
  :root { color-scheme: dark; font: 14px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }
  html, body { margin: 0; height: 100%; background: #16171b; color: #e4e6eb; }
  body { display: flex; align-items: center; justify-content: center; padding: 24px; box-sizing: border-box; }
  main { width: 100%; max-width: 480px; background: #1e2026; border: 1px solid #30333d; border-radius: 10px;
    box-shadow: 0 12px 32px rgba(0,0,0,.5), 0 2px 6px rgba(0,0,0,.3); padding: 28px 30px 26px; }
  .brand { display: flex; align-items: center; gap: 10px; color: #9aa0ac; font-weight: 600; letter-spacing: .01em; margin-bottom: 18px; }
  .brand img { width: 22px; height: 22px; }
  h1 { font-size: 19px; line-height: 1.3; margin: 0 0 10px; font-weight: 650; }
  p { margin: 0 0 16px; color: #c9ccd3; }
  code { font: 13px ui-monospace, 'SF Mono', 'Cascadia Mono', Menlo, Consolas, monospace; background: #262830;
    border: 1px solid #30333d; border-radius: 4px; padding: 1px 5px; color: #e4e6eb; white-space: nowrap; }
  label { display: block; font-size: 12px; color: #9aa0ac; margin-bottom: 6px; }
  .row { display: flex; gap: 8px; }
  input { flex: 1; min-width: 0; height: 34px; padding: 0 10px; border-radius: 6px; border: 1px solid #3d414d;
    background: #16171b; color: #e4e6eb; font: 13px ui-monospace, 'SF Mono', 'Cascadia Mono', Menlo, Consolas, monospace; }
  input:focus { outline: none; border-color: #6ea8fe; box-shadow: 0 0 0 2px rgba(110,168,254,.35); }
  button { height: 34px; padding: 0 16px; border-radius: 6px; border: 1px solid #6ea8fe; background: #6ea8fe;
    color: #0d1a2e; font: inherit; font-weight: 600; cursor: pointer; white-space: nowrap; }
  button:hover { background: #8fbcff; border-color: #8fbcff; }
  .wrong { color: #ef6b6b; background: rgba(239,107,107,.12); border: 1px solid rgba(239,107,107,.35); border-radius: 6px; padding: 8px 10px; margin: 0 0 16px; }
  .hint { font-size: 12px; color: #6b7180; margin: 14px 0 0; }
</style></head>
<body><main data-testid="token-page">
<div class="brand"><img src="${ICON}" alt="">SUPIR Studio</div>
<h1>This server needs its access token</h1>
<p>Open the address printed in the server's console (it ends in <code>?token=…</code>), or paste the token here.</p>
${note}<form method="get" action="${escape(path)}">
<label for="token">Access token</label>
<div class="row"><input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required autofocus placeholder="Paste the token"><button type="submit">Open the editor</button></div>
</form>
<p class="hint">The server keeps it in <code>state/access-token</code> inside its data folder.</p>
</main></body></html>
`;
}
