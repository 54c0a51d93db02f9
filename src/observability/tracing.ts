/**
 * OpenTelemetry tracing, off unless an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; the exporter reads the standard OTEL_* variables itself): a server
 * span per HTTP request (src/http/server.ts) carrying the GraphQL operation, and a client span per SQL
 * statement beneath it (the database's StatementObserver). Incoming `traceparent` headers continue the
 * caller's trace.
 */
import {
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from '@opentelemetry/api';
import type { SpanExporter } from '@opentelemetry/sdk-trace-node';
import {
  ATTR_DB_QUERY_TEXT,
  ATTR_DB_SYSTEM_NAME,
  ATTR_SERVICE_NAME,
} from '@opentelemetry/semantic-conventions';
import type { StatementObserver } from '../db/client';

export interface Tracing {
  tracer: Tracer;
  /** Flushes spans not yet exported and stops (shutdown). */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** Where spans go; default: OTLP over HTTP when an endpoint is configured, else tracing is off. */
  exporter?: SpanExporter;
  env?: NodeJS.ProcessEnv;
}

/** Null (no tracing, no cost) unless an exporter is given or an OTLP endpoint is configured. */
export async function startTracing(options: TracingOptions = {}): Promise<Tracing | null> {
  const env = options.env ?? process.env;
  const configured = Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  if (!options.exporter && !configured) return null;
  // Loaded only when tracing is on: the SDK and exporter cost start-up time nobody else should pay.
  const { BatchSpanProcessor, NodeTracerProvider, SimpleSpanProcessor } = await import(
    '@opentelemetry/sdk-trace-node'
  );
  const { resourceFromAttributes } = await import('@opentelemetry/resources');
  const processor = options.exporter
    ? // Tests export synchronously to read spans at once; production batches off the request path.
      new SimpleSpanProcessor(options.exporter)
    : new BatchSpanProcessor(
        new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter(),
      );
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME || 'sona-experiments' }),
    spanProcessors: [processor],
  });
  // Installs the AsyncLocalStorage context manager and the W3C trace-context propagator (once per process).
  provider.register();
  return { tracer: provider.getTracer('sona-experiments'), shutdown: () => provider.shutdown() };
}

/** Runs `fn` inside a server span continuing the caller's trace (from `traceparent`), if tracing is on. */
export function withServerSpan<T>(
  tracing: Tracing | null | undefined,
  name: string,
  headers: Record<string, string | string[] | undefined>,
  attributes: Record<string, string | number>,
  fn: (span: Span | null) => T,
): T {
  if (!tracing) return fn(null);
  const parent = propagation.extract(context.active(), headers);
  const span = tracing.tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  return context.with(trace.setSpan(parent, span), () => fn(span));
}

/** The first keyword of a statement (SELECT, INSERT, WITH, …), after any leading comment: a span name of low cardinality. */
function statementName(text: string): string {
  const match = /^\s*(?:\/\*[\s\S]*?\*\/\s*)*([A-Za-z]+)/.exec(text);
  return match ? match[1].toUpperCase() : 'SQL';
}

/** A client span per SQL statement, child of the request's span; the text has placeholders, never values. */
export function tracingObserver(tracing: Tracing): StatementObserver {
  return {
    start(text) {
      const span = tracing.tracer.startSpan(statementName(text), {
        kind: SpanKind.CLIENT,
        // PGlite is PostgreSQL too.
        attributes: { [ATTR_DB_SYSTEM_NAME]: 'postgresql', [ATTR_DB_QUERY_TEXT]: text },
      });
      return (error) => {
        if (error) {
          span.recordException(error instanceof Error ? error : String(error));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      };
    },
  };
}
