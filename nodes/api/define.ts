import type { NodeEnv } from './env.ts';
import type { Rng } from './rng.ts';
import type { SocketType, SocketValueMap } from './sockets.ts';
import type { ImageTensor } from './tensor.ts';
import type { FileRef } from './file-ref.ts';
import type { WidgetSpec, WidgetValue } from './widgets.ts';
import type { Branch } from './branch.ts';
import type { BatchItem, BatchListing } from './batch.ts';

export interface InputSpec {
  type: SocketType;
  optional?: boolean;
  description?: string;
  /**
   * Receives every branch of a sweep as a list (`Branch[]`) instead of being copied per branch: the
   * point where a swept chain comes back together (Grid, Metrics). A plain link gives one branch.
   */
  gather?: boolean;
}

export type InputSpecs = Record<string, InputSpec>;
export type WidgetSpecs = Record<string, WidgetSpec>;
export type OutputSpecs = Record<string, SocketType>;

export type { FileRef };
export type { Branch, BranchCoord } from './branch.ts';
export type { BatchItem, BatchEntry, BatchListing } from './batch.ts';

/** Values a node's `execute` receives: linked inputs and widgets, by name. */
type InputValueOf<S extends InputSpec> = S['gather'] extends true ? Array<Branch<SocketValueMap[S['type']]>> : SocketValueMap[S['type']];

export type NodeArgs<I extends InputSpecs, W extends WidgetSpecs> = {
  [K in keyof I]: I[K]['optional'] extends true ? InputValueOf<I[K]> | undefined : InputValueOf<I[K]>;
} & { [K in keyof W]: WidgetValue<W[K]> };

export type NodeOutputs<O extends OutputSpecs> = { [K in keyof O]: SocketValueMap[O[K]] };

export interface NodeContext {
  readonly nodeId: string;
  readonly promptId: string;
  readonly signal: AbortSignal;
  readonly env: NodeEnv;
  /** The workflow and API prompt being run, for output nodes that embed them in files. */
  readonly extra: { workflow?: unknown; prompt?: unknown };
  /** Reports progress; throws an InterruptedError when the prompt was interrupted. */
  progress(value: number, max: number): void;
  /** Throws an InterruptedError when the prompt was interrupted. */
  checkAborted(): void;
  /** Shows an intermediate image (latent preview, tile) on the node; dropped when nobody listens. */
  preview(image: ImageTensor, info?: { step?: number }): void;
  /** A generator seeded by `seed`, or, without one, by the node's cache key (same inputs, same draws). */
  rng(seed?: number): Rng;
  /** Tells the person something worth knowing that is not an error (a prompt was cut, say). */
  warn(message: string): void;
  /** Records a file this node wrote or showed: it appears in the history and on the node. */
  addFile(ref: FileRef): void;
  /** The image of a batch this node's branch runs for (Load Images (folder)); absent outside a batch. */
  readonly batch?: BatchItem;
}

export interface NodeDefinition<
  I extends InputSpecs = InputSpecs,
  W extends WidgetSpecs = WidgetSpecs,
  O extends OutputSpecs = OutputSpecs,
> {
  id: string;
  displayName: string;
  category: string;
  description: string;
  inputs: I;
  widgets: W;
  outputs: O;
  /** Output nodes are where execution starts: only their ancestors run. */
  output?: boolean;
  /**
   * Configures a sweep instead of running: validation expands the graph into one branch per
   * combination of its value lists (server/engine/sweep.ts); `execute` is never called.
   */
  sweep?: boolean;
  /**
   * Makes the node a batch source: validation calls `list` and copies the node and everything
   * downstream of it once per entry (server/engine/batch.ts), each copy with the literal `file`
   * set to its entry's file and `NodeContext.batch` set to its item.
   */
  batch?: { list(args: { [K in keyof W]: WidgetValue<W[K]> }, env: NodeEnv): BatchListing };
  /**
   * For an output node in a batch: the files it would write for `item`, when its widgets and the
   * item alone name them (undefined otherwise). When every output of an item has all its files,
   * the engine skips that item: a batch run again resumes where it stopped.
   */
  resumeFiles?(args: { [K in keyof W]: WidgetValue<W[K]> }, item: BatchItem, env: NodeEnv): FileRef[] | undefined;
  /** Gives different results for the same inputs (e.g. reads the clock): never cached. */
  nondeterministic?: boolean;
  /** Changes when something outside the inputs changes (a loaded file's content hash). */
  fingerprint?(args: { [K in keyof W]: WidgetValue<W[K]> }, env: NodeEnv): string | Promise<string>;
  /** Extra checks on widget values before anything runs; returns [widget, reason] pairs. */
  validate?(args: { [K in keyof W]: WidgetValue<W[K]> }, env: NodeEnv): Array<[string, string]>;
  execute(args: NodeArgs<I, W>, ctx: NodeContext): Promise<NodeOutputs<O>> | NodeOutputs<O>;
}

/** Erased form kept by the registry and the executor. */
export type AnyNodeDefinition = NodeDefinition<InputSpecs, WidgetSpecs, OutputSpecs>;

export function defineNode<I extends InputSpecs, W extends WidgetSpecs, O extends OutputSpecs>(
  def: NodeDefinition<I, W, O>,
): AnyNodeDefinition {
  const clash = Object.keys(def.inputs).find((name) => name in def.widgets);
  if (clash) throw new Error(`node ${def.id}: '${clash}' is both an input and a widget`);
  return def as unknown as AnyNodeDefinition;
}
