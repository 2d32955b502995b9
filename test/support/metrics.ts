// A real HTTP scrape of an agent's /metrics and a reader of the Prometheus
// text exposition format (label values unescaped as Prometheus reads them),
// so a test checks what a Prometheus server would store.
import * as http from 'node:http';
import * as net from 'node:net';

export { freePort } from '../../lib/embedded-cluster';

export interface Scrape {
  status: number;
  contentType: string;
  body: string;
}

export function httpGet(url: string, timeoutMs = 5000): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

// One sample line: name, optional {labels}, value (timestamps are not used
// by prom-client). Label values: \\ \" \n are the only escapes.
function parseLine(line: string): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
  const name = nameMatch[0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    while (line[i] !== '}') {
      const key = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
      if (!key || line[i + key[0].length] !== '=' || line[i + key[0].length + 1] !== '"') {
        throw new Error(`bad label at ${i} in ${JSON.stringify(line)}`);
      }
      i += key[0].length + 2;
      let value = '';
      for (;;) {
        const ch = line[i++];
        if (ch === undefined) throw new Error(`unterminated label value in ${JSON.stringify(line)}`);
        if (ch === '"') break;
        if (ch === '\\') {
          const next = line[i++];
          if (next === 'n') value += '\n';
          else if (next === '\\' || next === '"') value += next;
          else throw new Error(`bad escape \\${next} in ${JSON.stringify(line)}`);
        } else value += ch;
      }
      if (key[0] in labels) throw new Error(`label ${key[0]} twice in ${JSON.stringify(line)}`);
      labels[key[0]] = value;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') throw new Error(`bad label list in ${JSON.stringify(line)}`);
    }
    i++;
  }
  const rest = line.slice(i).trim().split(/\s+/);
  if (rest.length < 1 || rest.length > 2 || rest[0] === '') throw new Error(`bad value in ${JSON.stringify(line)}`);
  // as Prometheus reads them (Go's ParseFloat): NaN and Inf in any case
  // (prom-client writes NaN as "Nan")
  const special: Record<string, number> = { nan: NaN, inf: Infinity, '+inf': Infinity, '-inf': -Infinity };
  const word = rest[0].toLowerCase();
  const value = word in special ? special[word] : Number(rest[0]);
  if (Number.isNaN(value) && word !== 'nan') throw new Error(`bad value in ${JSON.stringify(line)}`);
  return { name, labels, value };
}

export interface Metrics {
  samples: Sample[];
  // # TYPE lines: metric name → counter | gauge | …
  types: Record<string, string>;
  text: string;
}

export function parseMetrics(text: string): Metrics {
  const samples: Sample[] = [];
  const types: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types[type[1]] = type[2];
    if (line.startsWith('#')) continue;
    samples.push(parseLine(line));
  }
  return { samples, types, text };
}

// Samples of a metric whose labels include the given ones.
export function series(metrics: Metrics, name: string, labels: Record<string, string> = {}): Sample[] {
  return metrics.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

// The one sample of a metric with these labels; undefined when none, an error when several.
export function sample(metrics: Metrics, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = series(metrics, name, labels);
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}: ${JSON.stringify(found)}`);
  return found[0]?.value;
}

export async function scrape(port: number, host = '127.0.0.1'): Promise<Metrics> {
  const res = await httpGet(`http://${host}:${port}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics on ${host}:${port} answered ${res.status}: ${res.body.slice(0, 500)}`);
  return parseMetrics(res.body);
}

// A port held by a listener of this process, as another program would hold it.
export async function holdPort(host = '127.0.0.1'): Promise<{ port: number; release(): Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    release: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
