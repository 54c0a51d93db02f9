// Typed operations from the service's own schema (graphql-codegen client preset): `npm run web:codegen`
// regenerates web/src/gql/ after schema.graphql or an operation changed (the build runs it too).
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['web/src/**/*.{ts,tsx}', '!web/src/gql/**'],
  ignoreNoDocuments: false,
  generates: {
    'web/src/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: { enumsAsTypes: true, useTypeImports: true, scalars: { DateTime: 'string', JSON: 'unknown' } },
    },
  },
};
export default config;
