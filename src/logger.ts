import pino from 'pino';

/** Structured JSON logs. Authorization headers and keys never reach a log line. */
export function createLogger(level = process.env.LOG_LEVEL || 'info') {
  return pino({
    level,
    base: { service: 'sona-experiments' },
    redact: {
      paths: ['req.headers.authorization', '*.authorization', '*.apiKey', '*.key_hash'],
      censor: '[redacted]',
    },
  });
}
