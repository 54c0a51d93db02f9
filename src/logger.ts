import { trace } from '@opentelemetry/api';
import pino from 'pino';
import { currentRequestId } from './http/request-context';

/**
 * Structured JSON logs. Authorization headers and keys never reach a log line. Every line written while a
 * request is handled carries its request id, and with tracing on the trace and span ids, so a log line
 * leads to its trace. The destination is stdout unless given (tests read the lines the service really
 * writes).
 */
export function createLogger(level = process.env.LOG_LEVEL || 'info', destination?: pino.DestinationStream) {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'sona-experiments' },
    // A log call's own fields win over these (pino's default merge).
    mixin() {
      const requestId = currentRequestId();
      const span = trace.getActiveSpan(); // only with tracing on
      const ids = span && { traceId: span.spanContext().traceId, spanId: span.spanContext().spanId };
      return { ...(requestId ? { requestId } : {}), ...ids };
    },
    redact: {
      paths: ['req.headers.authorization', '*.authorization', '*.apiKey', '*.key_hash'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
