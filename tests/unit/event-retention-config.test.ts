import { describe, expect, it } from '@jest/globals';
import { LIMITS, loadConfig } from '../../src/config';
import { oldestAcceptedEvent } from '../../src/events/partitions';

describe('EVENT_RETENTION_DAYS', () => {
  it('is off unless set, and a positive whole number of days', () => {
    expect(loadConfig({}).eventRetentionDays).toBeNull();
    expect(loadConfig({ EVENT_RETENTION_DAYS: '' }).eventRetentionDays).toBeNull();
    expect(loadConfig({ EVENT_RETENTION_DAYS: '90' }).eventRetentionDays).toBe(90);
    expect(() => loadConfig({ EVENT_RETENTION_DAYS: '0' })).toThrow(
      /EVENT_RETENTION_DAYS must be at least 1/,
    );
    expect(() => loadConfig({ EVENT_RETENTION_DAYS: '30.5' })).toThrow(/EVENT_RETENTION_DAYS/);
    expect(() => loadConfig({ EVENT_RETENTION_DAYS: 'forever' })).toThrow(/EVENT_RETENTION_DAYS/);
  });

  it('refuses events older than the retention less the clock margin', () => {
    const now = new Date('2027-03-15T12:00:00.000Z');
    const oldest = oldestAcceptedEvent(30, now);
    expect(oldest.toISOString()).toBe('2027-02-13T13:00:00.000Z');
    // The margin covers the future allowance of occurredAt (a retry of a forgotten event is refused).
    expect(LIMITS.eventRetentionMarginMs).toBeGreaterThan(LIMITS.occurredAtMaxFutureMs);
  });
});
