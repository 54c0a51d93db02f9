import { describePowerCase, POWER_CASES } from './power-cases';

describePowerCase(POWER_CASES.fixed80);
describePowerCase(POWER_CASES.fixed90);
describePowerCase(POWER_CASES.revenue);
describePowerCase(POWER_CASES.bayesian);
