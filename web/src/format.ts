/** Numbers and dates as a person reads them. */
export const percent = (x: number | null | undefined, digits = 1) =>
  x == null ? '—' : `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(digits)}%`;
export const share = (x: number | null | undefined, digits = 0) =>
  x == null ? '—' : `${(x * 100).toFixed(digits)}%`;
export const count = (x: number | null | undefined) =>
  x == null ? '—' : Math.round(x).toLocaleString('en-US');
export const dateTime = (iso: string | null | undefined) =>
  iso ? new Date(iso).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' }) : '—';
export function daysRunning(startAt: string | null | undefined, endAt?: string | null): string {
  if (!startAt) return '—';
  const end = endAt ? new Date(endAt).getTime() : Date.now();
  const days = Math.max(0, (end - new Date(startAt).getTime()) / 86_400_000);
  return days < 1 ? '< 1 day' : `${Math.floor(days)} day${Math.floor(days) === 1 ? '' : 's'}`;
}
