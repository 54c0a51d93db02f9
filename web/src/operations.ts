/**
 * Every GraphQL operation of the dashboard, typed from schema.graphql (graphql-codegen, web/src/gql/).
 * The experiment page reads everything it shows with ONE query and keeps it current with ONE
 * subscription selecting the same fragment, so every push redraws every chart, the effect over time
 * included (`scorecard.timeSeries`: each metric's series in the same query, hourly for a young experiment).
 */
import { graphql } from './gql';

export const ViewerFields = graphql(`
  fragment ViewerFields on Viewer {
    name
    scopes
  }
`);

export const ExperimentsQuery = graphql(`
  query DashboardExperiments($status: ExperimentStatus, $after: String) {
    viewer {
      ...ViewerFields
    }
    experiments(first: 10, status: $status, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        node {
          id
          key
          name
          status
          startAt
          createdAt
          assignmentCount
          layer {
            key
            name
          }
          scorecard {
            metric
            role
            goal
            srm {
              mismatch
            }
            variants {
              isControl
              significant
              relativeEffect {
                estimate
              }
            }
          }
        }
      }
    }
  }
`);

export const ExperimentDetail = graphql(`
  fragment ExperimentDetail on Experiment {
    id
    key
    name
    description
    status
    kind
    trafficAllocation
    createdAt
    startAt
    endAt
    assignmentCount
    layer {
      key
      name
    }
    variants {
      id
      name
      weight
      isControl
      config
    }
    schedule {
      stopAfterUnits
      stopAt
      enrolledUnits
    }
    scorecard {
      metric
      role
      goal
      method
      confidenceLevel
      toleratedHarm
      reason
      srm {
        mismatch
        pValue
        observed
        expected
        reason
      }
      variants {
        variant {
          id
          name
        }
        isControl
        units
        mean
        pValue
        significant
        chanceToWin
        reason
        relativeEffect {
          estimate
          lower
          upper
        }
        absoluteEffect {
          estimate
          lower
          upper
        }
      }
      timeSeries {
        at
        variants {
          variant {
            id
          }
          isControl
          relativeEffect {
            estimate
            lower
            upper
          }
        }
      }
    }
    auditLog(first: 20) {
      id
      action
      actor
      createdAt
      details
    }
  }
`);

export const ExperimentPageQuery = graphql(`
  query DashboardExperiment($key: String!) {
    viewer {
      ...ViewerFields
    }
    experiment(key: $key) {
      ...ExperimentDetail
    }
  }
`);

export const ExperimentLive = graphql(`
  subscription DashboardExperimentLive($key: String!) {
    experimentChanged(experimentKey: $key) {
      ...ExperimentDetail
    }
  }
`);

export const StartMutation = graphql(`
  mutation DashboardStart($id: ID!) {
    startExperiment(id: $id) {
      __typename
      ... on Experiment {
        id
        status
      }
      ... on Error {
        code
        message
      }
    }
  }
`);

export const PauseMutation = graphql(`
  mutation DashboardPause($id: ID!) {
    pauseExperiment(id: $id) {
      __typename
      ... on Experiment {
        id
        status
      }
      ... on Error {
        code
        message
      }
    }
  }
`);

export const CompleteMutation = graphql(`
  mutation DashboardComplete($id: ID!) {
    completeExperiment(id: $id) {
      __typename
      ... on Experiment {
        id
        status
      }
      ... on Error {
        code
        message
      }
    }
  }
`);
