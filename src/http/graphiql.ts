/** The document GraphiQL opens with: a tour of the API on the seed data. */
export const GRAPHIQL_EXAMPLE = `# Welcome to sona-experiments. Run an operation with the ▶ button.
# The seed data has three experiments; try them in order.

query ListExperiments {
  experiments(first: 10) {
    totalCount
    edges {
      node {
        key
        name
        status
        trafficAllocation
        variants { name weight isControl config metrics { exposures uniqueUsers conversions conversionRate } }
        assignmentCount
      }
    }
  }
}

mutation AssignUser {
  assignVariant(experimentKey: "homepage-recs-collaborative", userId: "user-from-graphiql") {
    __typename
    ... on Assignment { enrolled reason variant { name config } }
    ... on Error { code message }
  }
}

mutation RecordConversion {
  recordConversion(input: {
    experimentKey: "homepage-recs-collaborative"
    userId: "user-from-graphiql"
    metricName: "conversion"
    value: 1
  }) {
    __typename
    ... on RecordEventSuccess { eventId duplicate variantId }
    ... on Error { code message }
  }
}
`;
