// Pure statistics engine: no database, GraphQL or I/O imports belong anywhere under this directory.
export * from './analyze';
export * from './bayesian';
export * from './corrections';
export * from './cuped';
export * from './decision';
export * from './difference';
export * from './distributions';
export * from './exact';
export * from './frequentist';
export * from './power';
export * from './sequential';
export * from './srm';
export * from './summary';
export * from './types';
