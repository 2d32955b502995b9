// Flag values the snapshot commands turn into SQL arguments before any
// connection is made: a bad one exits 2 with nothing changed.
import { ExitCode, SteepError } from '../lib/errors';

const units: Record<string, string> = { s: 'seconds', m: 'minutes', h: 'hours', d: 'days', w: 'weeks' };

// --expires: '7d', '12h', '30m' (also s and w) become interval text
// ('7 days'); digits alone are seconds; anything else is passed as typed
// (interval text such as '7 days' or '1 day 12:00'), which
// generate_snapshot reads and checks against its range.
export function expiresOption(value: string): string | number {
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const short = /^(\d+)\s*([A-Za-z])$/.exec(text);
  if (short) {
    const unit = units[short[2].toLowerCase()];
    // 'M' would read as months to some and minutes to others: say so rather than guess
    if (!unit || short[2] === 'M') {
      throw new SteepError(`--expires ${JSON.stringify(value)}: unknown unit ${JSON.stringify(short[2])}`, ExitCode.badArguments,
        "use a number with d, h, m or w ('7d', '12h', '30m', '2w'), seconds, or interval text such as '7 days'");
    }
    return `${short[1]} ${unit}`;
  }
  if (text === '' || !/^[0-9A-Za-z .:+-]+$/.test(text) || !/\d/.test(text)) {
    throw new SteepError(`--expires ${JSON.stringify(value)} is not a duration`, ExitCode.badArguments,
      "use a number with d, h, m or w ('7d', '12h', '30m', '2w'), seconds, or interval text such as '7 days'");
  }
  return text;
}
