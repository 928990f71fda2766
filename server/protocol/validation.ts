export const ISSUE_CODES = [
  'no_outputs',
  'unknown_type',
  'unknown_input',
  'missing_input',
  'dangling_link',
  'type_mismatch',
  'bad_value',
  'out_of_range',
  'not_in_list',
  'cycle',
] as const;
export type IssueCode = (typeof ISSUE_CODES)[number];

/** One reason a graph cannot run. `node_id` is null for problems of the graph as a whole. */
export interface ValidationIssue {
  node_id: string | null;
  node_type?: string;
  input?: string;
  code: IssueCode;
  message: string;
}
