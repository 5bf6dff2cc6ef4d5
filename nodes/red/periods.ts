// Calendar periods (day, week, month) in a store's time zone, for counter resets and cooldown-gate limits.
import { DateTime } from 'luxon';

export type CalendarPeriod = 'day' | 'week' | 'month';
export const CALENDAR_PERIODS: readonly CalendarPeriod[] = ['day', 'week', 'month'];

/** A calendar period, or `never` (no period: the counter never resets). */
export type ResetEvery = 'never' | CalendarPeriod;

/**
 * The start (ms) of the period holding `at`, at local midnight in `zone` (luxon weeks start on
 * Monday); null for `never`. By the calendar, so a day across a daylight-saving change is 23 or 25 hours.
 */
export function periodStartOf(at: number, period: ResetEvery, zone: string): number | null {
  if (period === 'never') return null;
  return DateTime.fromMillis(at, { zone }).startOf(period).toMillis();
}

/** The start (ms) of the period after the one holding `at`: local midnight of the next day, Monday or 1st. */
export function nextPeriodStart(at: number, period: CalendarPeriod, zone: string): number {
  return DateTime.fromMillis(at, { zone })
    .startOf(period)
    .plus({ [`${period}s`]: 1 })
    .startOf(period)
    .toMillis();
}
