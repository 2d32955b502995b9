// Every test file ends with no CLI run or agent of its own still running, even after a failure.
import { stopLeftoverProcesses } from './processes';

afterAll(stopLeftoverProcesses);
