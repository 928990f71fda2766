/**
 * What the server and its workers say to each other through Redis: the BullMQ queue's name, the
 * job's data and result, engine events carried as job progress, worker announcements and the
 * interrupt channel. Both sides import only this module's types and names.
 */
import type { FileRef } from '../../nodes/api/file-ref.ts';
import type { EngineEvent, NodeErrorInfo, PromptStatus } from '../engine/events.ts';
import type { PromptResult } from '../engine/executor.ts';
import type { ApiPrompt } from '../protocol/prompt.ts';

/** The BullMQ queue every prompt goes through; keys are `supir:<queue>:...`. */
export const QUEUE_NAME = 'prompts';
export const KEY_PREFIX = 'supir';
/**
 * A batch's parent jobs (a BullMQ flow: one parent per batch prompt, its children the image jobs
 * in QUEUE_NAME). No worker takes jobs from it: a parent moves to its `wait` list once its last
 * child ended, which tells the server to record the batch.
 */
export const BATCH_QUEUE_NAME = 'batches';

/** A worker's announcement lives this long after its last heartbeat. */
export const ANNOUNCE_TTL_MS = 10_000;
export const HEARTBEAT_MS = 2_000;
/**
 * Events kept in BullMQ's event stream (its default is 10,000): enough for a server that was away
 * a moment to catch up, without live previews (tens of kB each) filling Redis's memory.
 */
export const EVENTS_KEPT = 2_000;

export const keys = {
  /** One per live worker, with a TTL: WorkerAnnouncement as JSON. */
  worker: (id: string): string => `${KEY_PREFIX}:worker:${id}`,
  workerPattern: `${KEY_PREFIX}:worker:*`,
  /** Every worker that started prompt `id`, in order (RPUSH at each start): the attempts. */
  runs: (id: string): string => `${KEY_PREFIX}:runs:${id}`,
  /** `<folder>/<name the worker wrote>` → the name the server gave the file: makes uploads idempotent. */
  files: (id: string): string => `${KEY_PREFIX}:files:${id}`,
  /** Set (with a TTL) while someone watches the server's event stream with previews: workers skip encoding them otherwise. */
  previews: `${KEY_PREFIX}:previews-wanted`,
  /** Pub/sub: a prompt id to interrupt, or `*` for every running prompt. */
  interrupt: `${KEY_PREFIX}:interrupt`,
  /** Set (with a TTL) once batch `id` was interrupted: workers pass over its images not started yet. */
  stopped: (id: string): string => `${KEY_PREFIX}:stopped:${id}`,
};

/** The job of one image of batch `prompt` (`null`: the batch's outputs that belong to no image). Job ids may not hold ':'. */
export function itemJobId(prompt: string, index: number | null): string {
  return `${prompt}.${index === null ? 'shared' : `i${index}`}`;
}

/** The batch prompt and image of an image job's id, or null for a prompt's own job. */
export function parseItemJobId(id: string): { prompt: string; index: number | null } | null {
  const m = /^(.+)\.(?:i(\d+)|shared)$/.exec(id);
  return m ? { prompt: m[1]!, index: m[2] === undefined ? null : Number(m[2]) } : null;
}

/** What an image job of a batch runs: its image of the prompt's batch, and (`shared`) the outputs that belong to no image. */
export interface BatchJobRef {
  /** The batch prompt's id: the events name it, and interrupts for it reach this job. */
  prompt_id: string;
  /** The image (its branch number), or null for a job of the shared outputs only. */
  index: number | null;
  /** The image's file as the server listed it (inputs-relative): the worker checks its own listing agrees. */
  file: string | null;
  shared: boolean;
}

/** One image of a batch as the server listed it when the batch was queued. */
export interface BatchListedItem {
  index: number;
  position: number;
  source: string;
  file: string;
}

/** A batch parent job's data (BATCH_QUEUE_NAME): the prompt, its images, and those resumed before queueing. */
export interface BatchParentData extends Omit<JobData, 'batch' | 'prefer' | 'prefer_until'> {
  batch: {
    /** The node that listed the batch, and its title. */
    node: string;
    title: string;
    items: BatchListedItem[];
    /** Images whose every output the server's outputs folder holds already: not queued. */
    resumed: number[];
    /** The files of those images' outputs, by output node id (`<id>:<k>`). */
    resumed_outputs: Record<string, FileRef[]>;
    /** Every node of the prompt as planned (prompt_start's `nodes`). */
    nodes: string[];
    /** The ids of the child jobs, image order (the shared job last). */
    jobs: string[];
  };
}

export interface JobData {
  /** Empty (`{}`, null) in an image job of a batch: the worker reads them from its parent job. */
  prompt: ApiPrompt;
  workflow: unknown;
  number: number;
  client_id: string | null;
  created_at: number;
  /** Where the worker uploads outputs unless it was started with --server. */
  server_url: string;
  /** Model packs the prompt loads (routing): a worker with them loaded is preferred. */
  packs: string[];
  /** The worker preferred for it, and until when (ms since epoch) others leave it to that one. */
  prefer?: string;
  prefer_until?: number;
  /** Set for an image job of a batch (a child of a BatchParentData job). */
  batch?: BatchJobRef;
}

/** What a worker returns for a job that ran (whatever the prompt's status). */
export type JobResult = Omit<PromptResult, 'status' | 'error' | 'outputs'> & {
  status: PromptStatus;
  /** With the names the server gave the files. */
  outputs: Record<string, FileRef[]>;
  error: NodeErrorInfo | null;
  started_at: number;
  worker: string;
};

/** An engine event as job progress: previews carry their bytes as base64. */
export interface WireEvent {
  event: Exclude<EngineEvent, { type: 'preview' }> | (Omit<Extract<EngineEvent, { type: 'preview' }>, 'bytes'> & { bytes: string });
  worker: string;
}

export function toWire(event: EngineEvent, worker: string): WireEvent {
  if (event.type !== 'preview') return { event, worker };
  return { event: { ...event, bytes: Buffer.from(event.bytes).toString('base64') }, worker };
}

export function fromWire(wire: WireEvent): EngineEvent {
  const e = wire.event;
  if (e.type !== 'preview') return e;
  return { ...e, bytes: new Uint8Array(Buffer.from(e.bytes, 'base64')) };
}

export function isWireEvent(data: unknown): data is WireEvent {
  return typeof data === 'object' && data !== null && 'event' in data && typeof (data as WireEvent).event?.type === 'string';
}

/** What a worker tells the server about itself, every HEARTBEAT_MS. */
export interface WorkerAnnouncement {
  id: string;
  host: string;
  pid: number;
  provider: string;
  device: number | null;
  /** Free memory of its machine, bytes. */
  free_memory: number;
  /** Model packs it has loaded (prompts that opened them ran on it). */
  packs: string[];
  /** The prompt it runs now, or null. */
  running: string | null;
  done: number;
  started_at: number;
}
