/**
 * The `workflow` and `prompt` text chunks of a PNG, parsed: ours (Save Image writes a workflow) or
 * ComfyUI's (a UI workflow and the API prompt that ran). Absent or broken JSON is left out. Pure:
 * the editor (dropped files) and the server (uploads, CLI) read chunks their own way and share this.
 */
export function pngDocumentsFromText(text: { workflow?: string; prompt?: string }): { workflow?: unknown; prompt?: unknown } {
  const parse = (s: string | undefined): unknown => {
    if (s === undefined) return undefined;
    try {
      return JSON.parse(s) as unknown;
    } catch {
      return undefined;
    }
  };
  const workflow = parse(text.workflow);
  const prompt = parse(text.prompt);
  return { ...(workflow !== undefined ? { workflow } : {}), ...(prompt !== undefined ? { prompt } : {}) };
}
