/**
 * No import cycles in the product's code: every `.ts` and `.svelte` module under server/, nodes/
 * and editor/src, with every relative `import`, `import type` and `export ... from` (a cycle of
 * types is still a cycle for the reader, and the first step to one of values). Dynamic `import()`
 * is left out: it is how a module loads another lazily, on purpose. A cycle is printed as the
 * chain of files that closes it.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FOLDERS = ['server', 'nodes', 'editor/src'];

function modules(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'dist') walk(full);
      } else if (/\.(ts|svelte)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
        out.push(full);
      }
    }
  };
  for (const folder of FOLDERS) walk(path.join(ROOT, folder));
  return out.sort();
}

/** The code of a module: a .svelte file's `<script>` blocks, a .ts file whole. */
function code(file: string): string {
  const text = fs.readFileSync(file, 'utf8');
  if (!file.endsWith('.svelte')) return text;
  return [...text.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]).join('\n');
}

/** Module specifiers of the static imports and re-exports (types included), by parsing the code. */
export function staticImports(file: string, text = code(file)): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const specifiers: string[] = [];
  for (const statement of source.statements) {
    if ((ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) && statement.moduleSpecifier && ts.isStringLiteral(statement.moduleSpecifier)) {
      specifiers.push(statement.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(statement) && ts.isExternalModuleReference(statement.moduleReference) && ts.isStringLiteral(statement.moduleReference.expression)) {
      specifiers.push(statement.moduleReference.expression.text);
    }
  }
  return specifiers;
}

/** A relative specifier as a file of the set: `./x.ts`, `./x.js` (→ .ts), `./x`, `./dir` (→ index). */
function resolve(from: string, specifier: string, known: Set<string>): string | undefined {
  if (!specifier.startsWith('./') && !specifier.startsWith('../')) return undefined;
  const base = path.resolve(path.dirname(from), specifier);
  const candidates = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, `${base}.svelte`, path.join(base, 'index.ts')];
  return candidates.find((c) => known.has(c));
}

/** Strongly connected components with more than one module (or a module importing itself), Tarjan. */
function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  // Iterative, so that a long chain of imports cannot overflow the stack.
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: Array<{ node: string; next: number }> = [{ node: start, next: 0 }];
    index.set(start, counter);
    low.set(start, counter++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const edges = graph.get(frame.node) ?? [];
      if (frame.next < edges.length) {
        const to = edges[frame.next++]!;
        if (!index.has(to)) {
          index.set(to, counter);
          low.set(to, counter++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, next: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(to)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!.node;
        low.set(parent, Math.min(low.get(parent)!, low.get(frame.node)!));
      }
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        if (component.length > 1 || edges.includes(frame.node)) found.push(component);
      }
    }
  }
  return found;
}

/** One concrete cycle inside a component: a shortest path from its first module back to itself. */
function cycleIn(component: string[], graph: Map<string, string[]>): string[] {
  const members = new Set(component);
  const start = [...component].sort()[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const at = queue[i]!;
    for (const to of graph.get(at) ?? []) {
      if (!members.has(to)) continue;
      if (to === start) {
        const chain = [at];
        while (chain[0] !== start) chain.unshift(previous.get(chain[0]!)!);
        return [...chain, start];
      }
      if (!previous.has(to)) {
        previous.set(to, at);
        queue.push(to);
      }
    }
  }
  return [start, start];
}

describe('import cycles', () => {
  it('parses every kind of static import and re-export, types included, and resolves them', () => {
    const text = [
      "import a from './a.ts';",
      "import type { B } from './b.ts';",
      "import { type C, d } from '../c.js';",
      "export { e } from './e.ts';",
      "export type { F } from './f.ts';",
      "export * from './g';",
      "import './side-effect.ts';",
      "import x = require('./h.ts');",
      "const lazy = () => import('./lazy.ts');",
      "// import z from './in-a-comment.ts';",
      "const s = \"import y from './in-a-string.ts'\";",
      "import fs from 'node:fs';",
    ].join('\n');
    expect(staticImports('/x/m.ts', text)).toEqual(['./a.ts', './b.ts', '../c.js', './e.ts', './f.ts', './g', './side-effect.ts', './h.ts', 'node:fs']);
    const known = new Set(['/x/a.ts', '/c.ts', '/x/g/index.ts', '/x/View.svelte']);
    expect(resolve('/x/m.ts', './a.ts', known)).toBe('/x/a.ts');
    expect(resolve('/x/m.ts', '../c.js', known)).toBe('/c.ts');
    expect(resolve('/x/m.ts', './g', known)).toBe('/x/g/index.ts');
    expect(resolve('/x/m.ts', './View.svelte', known)).toBe('/x/View.svelte');
    expect(resolve('/x/m.ts', 'node:fs', known)).toBeUndefined();
    // The cycle finder finds a planted cycle and prints it as a chain.
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
    ]);
    const found = cycles(graph);
    expect(found.map((c) => c.sort())).toEqual([['a', 'b', 'c'], ['e']]);
    expect(cycleIn(found[0]!, graph)).toEqual(['a', 'b', 'c', 'a']);
  });

  it('finds none among the modules of server/, nodes/ and editor/src', () => {
    const files = modules();
    expect(files.length).toBeGreaterThan(100);
    const known = new Set(files);
    const graph = new Map<string, string[]>();
    const rel = (f: string): string => path.relative(ROOT, f);
    const unresolved: string[] = [];
    for (const file of files) {
      const edges: string[] = [];
      for (const specifier of staticImports(file)) {
        const to = resolve(file, specifier, known);
        if (to) edges.push(to);
        else if (/^\.\.?\//.test(specifier) && !/\.(css|json|svg|png)$/.test(specifier)) unresolved.push(`${rel(file)}: ${specifier}`);
      }
      graph.set(file, [...new Set(edges)]);
    }
    // A relative import this test cannot follow could hide a cycle.
    expect(unresolved, 'relative imports that lead to no module of the set').toEqual([]);
    const report = cycles(graph).map((component) => {
      const chain = cycleIn(component, graph).map(rel).join(' → ');
      return component.length > 2 ? `${chain} (and ${component.length} modules in all: ${component.map(rel).sort().join(', ')})` : chain;
    });
    expect(report, `import cycles:\n${report.join('\n')}`).toEqual([]);
  });
});
