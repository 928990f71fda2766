/**
 * The source a worker thread is started from when its module is TypeScript: the code base has no
 * build step, so the thread first registers tsx's loader (harmless where the parent already has
 * it), then imports the module. Pass the result to `new Worker(source, { eval: true })`.
 */
export function tsWorkerSource(moduleUrl: string): string {
  return `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(moduleUrl)}); });`;
}
