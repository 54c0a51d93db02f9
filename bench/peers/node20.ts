/**
 * PostGraphile 5 declares Node ≥ 22; on the Node 20 this project supports, the one thing it misses is
 * `Promise.withResolvers` (Node 22), which grafast and @dataplan/pg call on every request (without it
 * every connection field fails with "Cannot read properties of undefined (reading 'items')"). Defined
 * here, in the peer's own process only, to the specification's behaviour; imported before PostGraphile.
 */
interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

const promise = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> };
promise.withResolvers ??= <T>(): Resolvers<T> => {
  let resolve!: Resolvers<T>['resolve'];
  let reject!: Resolvers<T>['reject'];
  const p = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise: p, resolve, reject };
};
