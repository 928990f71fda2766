/**
 * The compiled graph: what validation (validate.ts) produces and planning (plan.ts), sweep
 * expansion (sweep.ts), cache keys and the executor read. Types only, so that every one of those
 * modules can import them without importing each other.
 */
import type { BranchCoord } from '../../nodes/api/branch.ts';
import type { BatchItem } from '../../nodes/api/batch.ts';
import type { AnyNodeDefinition } from '../../nodes/api/define.ts';
import type { BranchInfo } from '../protocol/events.ts';
import type { LinkRef } from '../protocol/prompt.ts';

export interface CompiledNode {
  id: string;
  def: AnyNodeDefinition;
  title: string;
  /** Widget values given as constants (defaults filled in). */
  literals: Record<string, unknown>;
  /** Inputs and widgets fed by links. */
  links: Record<string, LinkRef>;
  /** Gathering inputs (`gather: true`): every branch that reaches them, with its coordinates. */
  gathers: Record<string, GatherLink[]>;
  /** For a node copied per sweep branch: the node it was copied from, the branch and its values. */
  branch?: BranchInfo;
  /** For a node copied per image of a batch (server/engine/batch.ts): that image. */
  batch?: BatchItem;
}

/** A batch as validation listed it: the node that lists it and its images, one branch each. */
export interface BatchPlan {
  node: string;
  title: string;
  items: BatchItem[];
}

export interface GatherLink {
  link: LinkRef;
  coords: BranchCoord[];
}

/** A graph proven runnable: every node in `order` is an ancestor of an output node. */
export interface CompiledGraph {
  nodes: Map<string, CompiledNode>;
  order: string[];
  outputs: string[];
  /** Present when a Load Images (folder) node made the graph a batch. */
  batch?: BatchPlan;
}
