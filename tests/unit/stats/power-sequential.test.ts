import { describePowerCase, POWER_CASES } from './power-cases';

describePowerCase(POWER_CASES.holm);
describePowerCase(POWER_CASES.sequential);
