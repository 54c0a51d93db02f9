import { describeAaScenario, SCENARIOS } from './aa-scenarios';

describeAaScenario(SCENARIOS.revenue);
