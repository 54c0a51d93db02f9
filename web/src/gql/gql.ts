/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  fragment ViewerFields on Viewer {\n    name\n    scopes\n  }\n": typeof types.ViewerFieldsFragmentDoc,
    "\n  query DashboardExperiments($status: ExperimentStatus, $after: String) {\n    viewer {\n      ...ViewerFields\n    }\n    experiments(first: 10, status: $status, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          id\n          key\n          name\n          status\n          startAt\n          createdAt\n          assignmentCount\n          layer {\n            key\n            name\n          }\n          scorecard {\n            metric\n            role\n            goal\n            srm {\n              mismatch\n            }\n            variants {\n              isControl\n              significant\n              relativeEffect {\n                estimate\n              }\n            }\n          }\n        }\n      }\n    }\n  }\n": typeof types.DashboardExperimentsDocument,
    "\n  fragment ExperimentDetail on Experiment {\n    id\n    key\n    name\n    description\n    status\n    kind\n    trafficAllocation\n    createdAt\n    startAt\n    endAt\n    assignmentCount\n    layer {\n      key\n      name\n    }\n    variants {\n      id\n      name\n      weight\n      isControl\n      config\n    }\n    schedule {\n      stopAfterUnits\n      stopAt\n      enrolledUnits\n    }\n    scorecard {\n      metric\n      role\n      goal\n      method\n      confidenceLevel\n      toleratedHarm\n      reason\n      srm {\n        mismatch\n        pValue\n        observed\n        expected\n        reason\n      }\n      variants {\n        variant {\n          id\n          name\n        }\n        isControl\n        units\n        mean\n        pValue\n        significant\n        chanceToWin\n        reason\n        relativeEffect {\n          estimate\n          lower\n          upper\n        }\n        absoluteEffect {\n          estimate\n          lower\n          upper\n        }\n      }\n      timeSeries {\n        at\n        variants {\n          variant {\n            id\n          }\n          isControl\n          relativeEffect {\n            estimate\n            lower\n            upper\n          }\n        }\n      }\n    }\n    auditLog(first: 20) {\n      id\n      action\n      actor\n      createdAt\n      details\n    }\n  }\n": typeof types.ExperimentDetailFragmentDoc,
    "\n  query DashboardExperiment($key: String!) {\n    viewer {\n      ...ViewerFields\n    }\n    experiment(key: $key) {\n      ...ExperimentDetail\n    }\n  }\n": typeof types.DashboardExperimentDocument,
    "\n  subscription DashboardExperimentLive($key: String!) {\n    experimentChanged(experimentKey: $key) {\n      ...ExperimentDetail\n    }\n  }\n": typeof types.DashboardExperimentLiveDocument,
    "\n  mutation DashboardStart($id: ID!) {\n    startExperiment(id: $id) {\n      __typename\n      ... on Experiment {\n        id\n        status\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": typeof types.DashboardStartDocument,
    "\n  mutation DashboardPause($id: ID!) {\n    pauseExperiment(id: $id) {\n      __typename\n      ... on Experiment {\n        id\n        status\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": typeof types.DashboardPauseDocument,
    "\n  mutation DashboardComplete($id: ID!) {\n    completeExperiment(id: $id) {\n      __typename\n      ... on Experiment {\n        id\n        status\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": typeof types.DashboardCompleteDocument,
};
const documents: Documents = {
    "\n  fragment ViewerFields on Viewer {\n    name\n    scopes\n  }\n": types.ViewerFieldsFragmentDoc,
    "\n  query DashboardExperiments($status: ExperimentStatus, $after: String) {\n    viewer {\n      ...ViewerFields\n    }\n    experiments(first: 10, status: $status, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          id\n          key\n          name\n          status\n          startAt\n          createdAt\n          assignmentCount\n          layer {\n            key\n            name\n          }\n          scorecard {\n            metric\n            role\n            goal\n            srm {\n              mismatch\n            }\n            variants {\n              isControl\n              significant\n              relativeEffect {\n                estimate\n              }\n            }\n          }\n        }\n      }\n    }\n  }\n": types.DashboardExperimentsDocument,
    "\n  fragment ExperimentDetail on Experiment {\n    id\n    key\n    name\n    description\n    status\n    kind\n    trafficAllocation\n    createdAt\n    startAt\n    endAt\n    assignmentCount\n    layer {\n      key\n      name\n    }\n    variants {\n      id\n      name\n      weight\n      isControl\n      config\n    }\n    schedule {\n      stopAfterUnits\n      stopAt\n      enrolledUnits\n    }\n    scorecard {\n      metric\n      role\n      goal\n      method\n      confidenceLevel\n      toleratedHarm\n      reason\n      srm {\n        mismatch\n        pValue\n        observed\n        expected\n        reason\n      }\n      variants {\n        variant {\n          id\n          name\n        }\n        isControl\n        units\n        mean\n        pValue\n        significant\n        chanceToWin\n        reason\n        relativeEffect {\n          estimate\n          lower\n          upper\n        }\n        absoluteEffect {\n          estimate\n          lower\n          upper\n        }\n      }\n      timeSeries {\n        at\n        variants {\n          variant {\n            id\n          }\n          isControl\n          relativeEffect {\n            estimate\n            lower\n            upper\n          }\n        }\n      }\n    }\n    auditLog(first: 20) {\n      id\n      action\n      actor\n      createdAt\n      details\n    }\n  }\n": types.ExperimentDetailFragmentDoc,
    "\n  query DashboardExperiment($key: String!) {\n    viewer {\n      ...ViewerFields\n    }\n    experiment(key: $key) {\n      ...ExperimentDetail\n    }\n  }\n": types.DashboardExperimentDocument,
    "\n  subscription DashboardExperimentLive($key: String!) {\n    experimentChanged(experimentKey: $key) {\n      ...ExperimentDetail\n    }\n  }\n": types.DashboardExperimentLiveDocument,
    "\n  mutation DashboardStart($id: ID!) {\n    startExperiment(id: $id) {\n      __typename\n      ... on Experiment {\n        id\n        status\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": types.DashboardStartDocument,
    "\n  mutation DashboardPause($id: ID!) {\n    pauseExperiment(id: $id) {\n      __typename\n      ... on Experiment {\n        id\n        status\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": types.DashboardPauseDocument,
    "\n  mutation DashboardComplete($id: ID!) {\n    completeExperiment(id: $id) {\n      __typename\n      ... on Experiment {\n        id\n        status\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": types.DashboardCompleteDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment ViewerFields on Viewer {\n    name\n    scopes\n  }\n"): (typeof documents)["\n  fragment ViewerFields on Viewer {\n    name\n    scopes\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DashboardExperiments($status: ExperimentStatus, $after: String) {\n    viewer {\n      ...ViewerFields\n    }\n    experiments(first: 10, status: $status, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          id\n          key\n          name\n          status\n          startAt\n          createdAt\n          assignmentCount\n          layer {\n            key\n            name\n          }\n          scorecard {\n            metric\n            role\n            goal\n            srm {\n              mismatch\n            }\n            variants {\n              isControl\n              significant\n              relativeEffect {\n                estimate\n              }\n            }\n          }\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query DashboardExperiments($status: ExperimentStatus, $after: String) {\n    viewer {\n      ...ViewerFields\n    }\n    experiments(first: 10, status: $status, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          id\n          key\n          name\n          status\n          startAt\n          createdAt\n          assignmentCount\n          layer {\n            key\n            name\n          }\n          scorecard {\n            metric\n            role\n            goal\n            srm {\n              mismatch\n            }\n            variants {\n              isControl\n              significant\n              relativeEffect {\n                estimate\n              }\n            }\n          }\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment ExperimentDetail on Experiment {\n    id\n    key\n    name\n    description\n    status\n    kind\n    trafficAllocation\n    createdAt\n    startAt\n    endAt\n    assignmentCount\n    layer {\n      key\n      name\n    }\n    variants {\n      id\n      name\n      weight\n      isControl\n      config\n    }\n    schedule {\n      stopAfterUnits\n      stopAt\n      enrolledUnits\n    }\n    scorecard {\n      metric\n      role\n      goal\n      method\n      confidenceLevel\n      toleratedHarm\n      reason\n      srm {\n        mismatch\n        pValue\n        observed\n        expected\n        reason\n      }\n      variants {\n        variant {\n          id\n          name\n        }\n        isControl\n        units\n        mean\n        pValue\n        significant\n        chanceToWin\n        reason\n        relativeEffect {\n          estimate\n          lower\n          upper\n        }\n        absoluteEffect {\n          estimate\n          lower\n          upper\n        }\n      }\n      timeSeries {\n        at\n        variants {\n          variant {\n            id\n          }\n          isControl\n          relativeEffect {\n            estimate\n            lower\n            upper\n          }\n        }\n      }\n    }\n    auditLog(first: 20) {\n      id\n      action\n      actor\n      createdAt\n      details\n    }\n  }\n"): (typeof documents)["\n  fragment ExperimentDetail on Experiment {\n    id\n    key\n    name\n    description\n    status\n    kind\n    trafficAllocation\n    createdAt\n    startAt\n    endAt\n    assignmentCount\n    layer {\n      key\n      name\n    }\n    variants {\n      id\n      name\n      weight\n      isControl\n      config\n    }\n    schedule {\n      stopAfterUnits\n      stopAt\n      enrolledUnits\n    }\n    scorecard {\n      metric\n      role\n      goal\n      method\n      confidenceLevel\n      toleratedHarm\n      reason\n      srm {\n        mismatch\n        pValue\n        observed\n        expected\n        reason\n      }\n      variants {\n        variant {\n          id\n          name\n        }\n        isControl\n        units\n        mean\n        pValue\n        significant\n        chanceToWin\n        reason\n        relativeEffect {\n          estimate\n          lower\n          upper\n        }\n        absoluteEffect {\n          estimate\n          lower\n          upper\n        }\n      }\n      timeSeries {\n        at\n        variants {\n          variant {\n            id\n          }\n          isControl\n          relativeEffect {\n            estimate\n            lower\n            upper\n          }\n        }\n      }\n    }\n    auditLog(first: 20) {\n      id\n      action\n      actor\n      createdAt\n      details\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DashboardExperiment($key: String!) {\n    viewer {\n      ...ViewerFields\n    }\n    experiment(key: $key) {\n      ...ExperimentDetail\n    }\n  }\n"): (typeof documents)["\n  query DashboardExperiment($key: String!) {\n    viewer {\n      ...ViewerFields\n    }\n    experiment(key: $key) {\n      ...ExperimentDetail\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription DashboardExperimentLive($key: String!) {\n    experimentChanged(experimentKey: $key) {\n      ...ExperimentDetail\n    }\n  }\n"): (typeof documents)["\n  subscription DashboardExperimentLive($key: String!) {\n    experimentChanged(experimentKey: $key) {\n      ...ExperimentDetail\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DashboardStart($id: ID!) {\n    startExperiment(id: $id) {\n      __typename\n      ... on Experiment {\n        id\n        status\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation DashboardStart($id: ID!) {\n    startExperiment(id: $id) {\n      __typename\n      ... on Experiment {\n        id\n        status\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DashboardPause($id: ID!) {\n    pauseExperiment(id: $id) {\n      __typename\n      ... on Experiment {\n        id\n        status\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation DashboardPause($id: ID!) {\n    pauseExperiment(id: $id) {\n      __typename\n      ... on Experiment {\n        id\n        status\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DashboardComplete($id: ID!) {\n    completeExperiment(id: $id) {\n      __typename\n      ... on Experiment {\n        id\n        status\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation DashboardComplete($id: ID!) {\n    completeExperiment(id: $id) {\n      __typename\n      ... on Experiment {\n        id\n        status\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;