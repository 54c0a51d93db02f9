import pino from 'pino';

/**
 * Structured JSON logs. Authorization headers and keys never reach a log line. The destination is
 * stdout unless given (tests read the lines the service really writes).
 */
export function createLogger(level = process.env.LOG_LEVEL || 'info', destination?: pino.DestinationStream) {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'sona-experiments' },
    redact: {
      paths: ['req.headers.authorization', '*.authorization', '*.apiKey', '*.key_hash'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
