/** Table text helpers with no Node dependency: the editor imports them for its CSV download. */
import type { TableData } from '../../api/file-ref.ts';

/** How a cell reads in the table image and the CSV: null as an empty cell. */
export function formatCell(cell: string | number | null): string {
  if (cell === null) return '';
  if (typeof cell === 'number') return Number.isInteger(cell) ? String(cell) : cell.toFixed(4);
  return cell;
}

/** RFC 4180 CSV: fields with commas, quotes or line breaks quoted, quotes doubled. */
export function toCsv(table: TableData): string {
  const field = (v: string | number | null): string => {
    const s = v === null ? '' : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [table.columns, ...table.rows].map((row) => row.map(field).join(',')).join('\r\n') + '\r\n';
}
