import { z } from 'zod';

/**
 * The flat, executable form of a graph (ComfyUI's "API format"): node id → type and inputs, where
 * an input is a literal widget value or a link `[source node id, output slot]`.
 */
export const LinkRefSchema = z.tuple([z.union([z.string(), z.number()]).transform(String), z.number().int().min(0)]);
export const InputValueSchema = z.union([z.string(), z.number(), z.boolean(), LinkRefSchema]);

/**
 * zod leaves a `__proto__` key out of a parsed record without a word (assigning it would replace
 * the result's prototype), so a node or an input of that name would silently vanish: it is
 * refused instead, naming it. Other names that objects inherit (`constructor`, `toString`) are
 * ordinary ids; the engine only looks them up as own properties or in Maps.
 */
function withoutProtoKey<T extends z.ZodType>(what: string, schema: T) {
  return z.preprocess((value, ctx) => {
    if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) {
      ctx.addIssue({ code: 'custom', path: ['__proto__'], message: `'__proto__' cannot be ${what}`, input: value });
    }
    return value;
  }, schema);
}

export const ApiNodeSchema = z.object({
  class_type: z.string().min(1).max(200),
  inputs: withoutProtoKey('an input name', z.record(z.string().max(200), InputValueSchema)).default({}),
  _meta: z.object({ title: z.string().max(500).optional() }).optional(),
});

export const ApiPromptSchema = withoutProtoKey('a node id', z.record(z.string().min(1).max(64), ApiNodeSchema)).refine(
  (p) => Object.keys(p).length > 0,
  'the prompt has no nodes',
);

export type LinkRef = [string, number];
export type InputValue = string | number | boolean | LinkRef;
export type ApiNode = z.infer<typeof ApiNodeSchema>;
export type ApiPrompt = Record<string, ApiNode>;

export function isLink(value: InputValue | undefined): value is LinkRef {
  return Array.isArray(value);
}
