import { LGraphNode, LiteGraph, type IContextMenuValue, type LGraphCanvas, type LLink } from '@comfyorg/litegraph';
import type { IBaseWidget } from '@comfyorg/litegraph/dist/types/widgets';
import type { NodeCatalogueJson } from '../../../server/protocol/index.ts';
import { nodeMenu } from './menus.ts';
import { addPackEstimate, SUPIR_PACK_NODE } from './pack-estimate.ts';
import { addSweepPickers, SWEEP_NODE_TYPE } from './sweep-pickers.ts';
import { viewHooksOf } from './view-hooks.ts';
import { widgetInputMenu } from './widget-inputs.ts';
import {
  planWidget,
  sanitizeNumber,
  seedControlOf,
  SEED_CONTROL_MODES,
  SEED_CONTROL_PROPERTY,
  SEED_CONTROL_WIDGET,
  withSeedControl,
  type CatalogueNode,
  type WidgetPlan,
} from './widget-specs.ts';

/** A node of a catalogue type: its class knows the catalogue entry and the widget plans. */
export interface StudioNodeClass {
  new (title?: string): LGraphNode;
  catalogue: CatalogueNode;
  plans: WidgetPlan[];
}

const registered = new Map<string, StudioNodeClass>();

/** Registers one litegraph class per catalogue node (replacing the previous catalogue's). */
export function registerCatalogue(catalogue: NodeCatalogueJson): void {
  for (const type of registered.keys()) {
    if (LiteGraph.registered_node_types[type]) LiteGraph.unregisterNodeType(type);
  }
  registered.clear();
  for (const def of catalogue.nodes) {
    const cls = makeNodeClass(def);
    LiteGraph.registerNodeType(def.id, cls as unknown as typeof LGraphNode);
    // registerNodeType derives the category from a "a/b" type; ours comes from the catalogue.
    Object.assign(cls, { category: def.category, title: def.display_name });
    registered.set(def.id, cls);
  }
}

export function studioClassOf(node: LGraphNode): StudioNodeClass | undefined {
  const cls = registered.get(node.type);
  return cls && node instanceof cls ? cls : undefined;
}

function makeNodeClass(def: CatalogueNode): StudioNodeClass {
  const plans = def.widgets.map(planWidget);
  class StudioNode extends LGraphNode {
    static catalogue = def;
    static plans = plans;

    constructor(title?: string) {
      super(title || def.display_name, def.id);
      this.serialize_widgets = true;
      for (const input of def.inputs) this.addInput(input.name, input.type, input.optional ? { label: `${input.name} (optional)` } : {});
      for (const output of def.outputs) this.addOutput(output.name, output.type);
      for (const plan of plans) addPlannedWidget(this, plan);
      if (def.id === SWEEP_NODE_TYPE) addSweepPickers(this);
      if (def.id === SUPIR_PACK_NODE) addPackEstimate(this);
      this.setSize(this.computeSize());
    }

    override onConfigure(): void {
      for (const w of this.widgets ?? []) {
        const seedOf = (w as SeedControlWidget).seedOf;
        if (seedOf) w.value = seedControlOf(this.properties as Record<string, unknown>, seedOf);
      }
    }

    /** A link takes its source's type (INT into a FLOAT input is an INT link), as in the saved file. */
    override onConnectionsChange(type: unknown, _index: number, connected: boolean, link: LLink | null | undefined): void {
      if (type !== LiteGraph.INPUT || !connected || !link) return;
      const source = this.graph?.getNodeById(link.origin_id)?.outputs[link.origin_slot];
      if (source) link.type = source.type;
    }

    override getMenuOptions(): IContextMenuValue[] {
      return nodeMenu(this) as IContextMenuValue[];
    }

    override getExtraMenuOptions(_canvas: LGraphCanvas, _options: (IContextMenuValue<unknown> | null)[]): (IContextMenuValue<unknown> | null)[] {
      return widgetInputMenu(this, plans);
    }
  }
  return StudioNode;
}

type SeedControlWidget = IBaseWidget & { seedOf?: string };

function addPlannedWidget(node: LGraphNode, plan: WidgetPlan): void {
  const edited = (): void => viewHooksOf(node)?.edited(node);
  let widget: IBaseWidget;
  switch (plan.type) {
    case 'number':
      widget = node.addWidget('number', plan.name, plan.value, (value: unknown) => {
        widget.value = sanitizeNumber(Number(value), plan.options, plan.integer);
        edited();
      }, { ...plan.options });
      break;
    case 'combo':
      widget = node.addWidget('combo', plan.name, plan.value, () => edited(), { values: [...plan.options.values] });
      break;
    case 'toggle':
      widget = node.addWidget('toggle', plan.name, plan.value, () => edited(), { ...plan.options });
      break;
    case 'text':
      widget = node.addWidget('text', plan.name, plan.value, (value: unknown) => {
        const max = plan.options.maxLength;
        if (max !== undefined && typeof value === 'string' && value.length > max) widget.value = value.slice(0, max);
        edited();
      }, { multiline: plan.options.multiline });
      break;
  }
  if (plan.tooltip) widget.tooltip = plan.tooltip;
  if (plan.type === 'number' && plan.seed) addSeedControl(node, plan.name);
  if (plan.type === 'combo' && plan.upload === 'image') addUploadButton(node, plan.name);
}

/** The button under an image combo (Load Image), as in ComfyUI: the app opens a file picker. */
export const UPLOAD_BUTTON_WIDGET = 'choose file to upload';

function addUploadButton(node: LGraphNode, imageWidget: string): void {
  const widget = node.addWidget('button', UPLOAD_BUTTON_WIDGET, '', () => viewHooksOf(node)?.pickImage?.(node, imageWidget), {});
  // Not a value: never serialised (copy/paste's positional widgets_values skip it).
  widget.serialize = false;
  widget.tooltip = 'Upload images from this computer (or drop them on the node, or paste one)';
}

/** The "control after queue" combo under a seed: its value lives in node.properties, not in widgets_values. */
function addSeedControl(node: LGraphNode, seedName: string): void {
  const mode = seedControlOf(node.properties as Record<string, unknown>, seedName);
  node.properties[SEED_CONTROL_PROPERTY] = withSeedControl(node.properties[SEED_CONTROL_PROPERTY], seedName, mode);
  const widget = node.addWidget('combo', SEED_CONTROL_WIDGET, mode, (value: unknown) => {
    const next = SEED_CONTROL_MODES.find((m) => m === value) ?? 'fixed';
    node.properties[SEED_CONTROL_PROPERTY] = withSeedControl(node.properties[SEED_CONTROL_PROPERTY], seedName, next);
    viewHooksOf(node)?.edited(node);
  }, { values: [...SEED_CONTROL_MODES] }) as SeedControlWidget;
  // Still serialised by litegraph (its positional widgets_values, used by copy/paste, would shift
  // otherwise), but never written to our workflow's widgets_values.
  widget.seedOf = seedName;
  widget.tooltip = 'What happens to the seed after each queued run';
}
