/**
 * The caption of one side of an A/B pair: "A" alone when the side has no label of its own (a
 * Compare Images node with empty labels names its sides "A" and "B"), else "A · label".
 */
export function pairCaption(slot: 'A' | 'B', label: string | null | undefined): string {
  const text = (label ?? '').trim();
  return text === '' || text === slot ? slot : `${slot} · ${text}`;
}
