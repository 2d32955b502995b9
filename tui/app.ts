// The live view: the screen, the keys and the redraw loop. Everything shown
// comes from the ClusterWatch; this file only remembers what the user is
// doing (selection, open overlay, a question asked) and what a key did.
import * as termkit from 'terminal-kit';
import type { ScreenBuffer as ScreenBufferType, Terminal } from 'terminal-kit';
import { describeError } from '../lib/errors';
import { cancelInit } from '../lib/sql/cancelInit';
import { Queryable } from '../lib/sql/queryable';
import { startInit } from '../lib/sql/startInit';
import { ago, bytes, shellWord } from '../lib/format';
import type { SnapshotOverview } from '../lib/sql/snapshots';
import { ClusterWatch, NodeView } from './cluster-watch';
import { Attr, fit, painterFor } from './draw';
import { renderInitOverlay } from './init-overlay';
import { renderNodesView } from './nodes-view';
import { choiceText, ReinitQuestion, renderReinitConfirm } from './reinit-confirm';
import { startReinit } from '../lib/sql/startReinit';

export interface LiveViewOptions {
  watch: ClusterWatch;
  // Node selected at start.
  focus?: string;
  // Lines shown above the status line (the demo's connection URLs).
  footer?: string[];
  terminal?: Terminal;
}

type Mode =
  | { kind: 'browse' }
  // what: the initialization, the reinit or the merge (cancel_init routes each)
  | { kind: 'confirm-cancel'; nodeId: string; what: string }
  // R: what to re-copy, asked in a box (renderReinitConfirm)
  | ({ kind: 'confirm-reinit' } & ReinitQuestion)
  | { kind: 'pick-source'; nodeId: string; sources: string[] }
  // methods: what the node's init_methods marks available, read when asked;
  // two-phase only with the source's ready snapshots (note: why not)
  | { kind: 'pick-method'; nodeId: string; source: string; methods: string[]; snapshots: SnapshotOverview[]; note?: string }
  | { kind: 'pick-snapshot'; nodeId: string; source: string; snapshots: SnapshotOverview[] };

interface StatusMessage {
  text: string;
  attr: Attr;
}

const keyHelp = '↑↓/jk move  D/Enter details  I init  R reinit  C cancel  Esc close  q quit';

export function runLiveView(options: LiveViewOptions): Promise<void> {
  const term = options.terminal ?? termkit.terminal;
  const { watch } = options;
  let selectedId = options.focus;
  let overlayId: string | undefined;
  let mode: Mode = { kind: 'browse' };
  let status: StatusMessage = { text: 'D or Enter shows a node\'s initialization; q quits', attr: { color: 'white' } };
  let buffer: ScreenBufferType | undefined;
  let drawTimer: NodeJS.Timeout | undefined;
  let lastFullDraw = 0;
  let closed = false;

  const say = (text: string, attr: Attr = { color: 'white' }) => {
    status = { text, attr };
    requestDraw();
  };
  const refuse = (text: string) => say(text, { color: 'yellow', bold: true });

  const nodes = () => watch.nodes();
  const selected = (): NodeView | undefined => {
    const list = nodes();
    return list.find((n) => n.id === selectedId) ?? list[0];
  };

  function draw(): void {
    drawTimer = undefined;
    if (closed) return;
    const width = term.width;
    const height = term.height;
    // Changed cells only, for no flicker; every few seconds all of them, so
    // that anything else written to the terminal (a stray warning) is painted over.
    let full = Date.now() - lastFullDraw > 5000;
    if (!buffer || buffer.width !== width || buffer.height !== height) {
      buffer = new termkit.ScreenBuffer({ dst: term, width, height });
      term.clear();
      full = true;
    }
    if (full) lastFullDraw = Date.now();
    buffer.fill({ attr: {}, char: ' ' });
    const screen = { x: 0, y: 0, width, height };
    const p = painterFor(buffer, screen);
    const now = new Date();
    const current = selected();
    selectedId = current?.id;

    const clock = now.toTimeString().slice(0, 8);
    const title = ` steep-repl · live view · ${watch.target}`;
    p.put(0, 0, fit(title, width - clock.length - 1) + clock + ' ', { inverse: true, bold: true });

    const footer = options.footer ?? [];
    const bottom = height - 2 - footer.length;
    const table = { x: 0, y: 2, width, height: bottom - 2 };
    renderNodesView(painterFor(buffer, table), table, nodes(), selectedId, now);
    footer.forEach((text, i) => p.put(1, bottom + i, text, { color: 'white', dim: true }));

    const overlayNode = watch.node(overlayId);
    if (overlayNode) {
      const area = { x: 2, y: 1, width: width - 4, height: height - 3 };
      renderInitOverlay(painterFor(buffer, area), area, overlayNode);
    }
    if (mode.kind === 'confirm-reinit') renderReinitConfirm(p, { x: 0, y: 1, width, height: height - 3 }, mode);

    const line = promptText() ?? (watch.registryProblem ? { text: `registry: ${watch.registryProblem} (retrying)`, attr: { color: 'red' } } : status);
    p.put(0, height - 2, fit(` ${line.text}`, width), line.attr);
    p.put(0, height - 1, fit(` ${keyHelp}`, width), { inverse: true });
    buffer.draw({ delta: !full });
  }

  function requestDraw(): void {
    if (!drawTimer && !closed) drawTimer = setTimeout(draw, 30);
  }

  function promptText(): StatusMessage | undefined {
    const ask = { color: 'black', bgColor: 'yellow', bold: true };
    switch (mode.kind) {
      case 'confirm-cancel':
        return { text: `Cancel the ${mode.what} of ${mode.nodeId}? y/n`, attr: ask };
      case 'confirm-reinit':
        return { text: `Reinit ${mode.nodeId}: re-copy ${choiceText(mode.choices[mode.chosen], mode.method)}? y/Enter to go, Esc to abort`, attr: ask };
      case 'pick-source':
        return { text: `Init ${mode.nodeId} from: ${mode.sources.map((s, i) => `[${i + 1}] ${s}`).join('  ')}  (Esc: no)`, attr: ask };
      case 'pick-method': {
        const m = mode;
        const label = (method: string) =>
          method !== 'two-phase' ? method : m.snapshots.length === 1 ? `two-phase ${m.snapshots[0].snapshot_id}` : `two-phase (${m.snapshots.length} snapshots)`;
        const choices = m.methods.map((method, i) => `[${i + 1}] ${label(method)}`).join('  ');
        return { text: `Init ${m.nodeId} from ${m.source}, method: ${choices}  (Esc: no)${m.note ? `  · ${m.note}` : ''}`, attr: ask };
      }
      case 'pick-snapshot': {
        const choices = mode.snapshots.map((s, i) => `[${i + 1}] ${s.snapshot_id} (${bytes(s.stored_bytes)}, ${ago(s.created_at)})`).join('  ');
        return { text: `Load into ${mode.nodeId} from ${mode.source}, snapshot: ${choices}  (Esc: no)`, attr: ask };
      }
      default:
        return undefined;
    }
  }

  function move(delta: number): void {
    const list = nodes();
    if (list.length === 0) return;
    const at = Math.max(0, list.findIndex((n) => n.id === selectedId));
    selectedId = list[Math.min(list.length - 1, Math.max(0, at + delta))].id;
    if (overlayId) {
      overlayId = selectedId;
      watch.watchDetail(overlayId);
    }
    requestDraw();
  }

  function askStart(node: NodeView): void {
    if (node.reachable === false) return refuse(`${node.id} is unreachable: cannot start an initialization there`);
    if (!node.state) return refuse(`${node.id} has not been read yet`);
    if (!node.state.can_start) {
      return refuse(`${node.id} is ${node.state.init_state}: an initialization starts only from ${node.state.start_states}`);
    }
    const sources = nodes()
      .map((n) => n.id)
      .filter((id) => id !== node.id);
    if (sources.length === 0) return refuse(`no other node is registered to copy ${node.id} from`);
    mode = { kind: 'pick-source', nodeId: node.id, sources: sources.slice(0, 9) };
    requestDraw();
  }

  function askCancel(node: NodeView): void {
    if (node.reachable === false) return refuse(`${node.id} is unreachable: cannot cancel its initialization from here`);
    if (!node.state) return refuse(`${node.id} has not been read yet`);
    if (!node.state.can_cancel) return refuse(`${node.id} is ${node.state.init_state}: there is no initialization to cancel`);
    const merge = node.state.method === 'merge' ? node.state.merge : undefined;
    // a merge that ended failed has no job left to stop (cancel_merge refuses it)
    if (merge?.outcome) {
      return refuse(`${node.id}'s merge with ${merge.peer_node_id} ended ${merge.outcome}: merge again (steep-repl node merge), or detach the node to remove what it left`);
    }
    const what = merge ? `merge with ${merge.peer_node_id ?? node.state.init_source_node ?? '?'}` : node.state.reinit ? 'reinit' : 'initialization';
    mode = { kind: 'confirm-cancel', nodeId: node.id, what };
    requestDraw();
  }

  // R: a synchronized or diverged node's tables re-copied from its source;
  // the diverged ones first (the default) when a verify found some.
  function askReinit(node: NodeView): void {
    if (node.reachable === false) return refuse(`${node.id} is unreachable: cannot start a reinit there`);
    const s = node.state;
    if (!s) return refuse(`${node.id} has not been read yet`);
    if (s.can_reinit === undefined) return refuse(`${node.id} runs a steep_repl without reinit (before 0.7.0)`);
    if (s.method === 'merge') {
      return refuse(`${node.id} was merged and replicates both ways: a reinit re-copies one side only; mend the rows on one node and verify, or detach both and merge again`);
    }
    if (!s.can_reinit) return refuse(`${node.id} is ${s.init_state}: a reinit starts only from synchronized or diverged`);
    if (!s.init_source_node) return refuse(`${node.id} has no source to copy from`);
    const diverged = (s.divergence ?? []).map((d) => d.label);
    const choices = [...(diverged.length ? [{ kind: 'tables' as const, tables: diverged }] : []), { kind: 'full' as const, tables: [] }];
    mode = { kind: 'confirm-reinit', nodeId: node.id, source: s.init_source_node, method: s.method, choices, chosen: 0 };
    requestDraw();
  }

  async function act(nodeId: string, doing: string, done: string, work: (db: Queryable) => Promise<unknown>): Promise<void> {
    say(`${doing}…`);
    try {
      await watch.runOn(nodeId, work);
      say(done, { color: 'green' });
    } catch (err) {
      say(`${doing} failed: ${describeError(err).replace(/\n/g, ' ')}`, { color: 'red', bold: true });
    }
  }

  function onPromptKey(name: string): void {
    if (name === 'ESCAPE' || name === 'n' || name === 'N' || name === 'q') {
      mode = { kind: 'browse' };
      return say('nothing done');
    }
    const m = mode;
    if (m.kind === 'confirm-cancel' && (name === 'y' || name === 'Y')) {
      mode = { kind: 'browse' };
      void act(m.nodeId, `cancelling the ${m.what} of ${m.nodeId}`, `cancel of ${m.nodeId} requested`, (db) =>
        cancelInit(db, m.nodeId),
      );
      return;
    }
    if (m.kind === 'confirm-reinit') return onReinitKey(m, name);
    const choice = Number(name) - 1;
    if (m.kind === 'pick-source' && m.sources[choice]) {
      mode = { kind: 'browse' };
      void askMethod(m.nodeId, m.sources[choice]);
      return;
    }
    if (m.kind === 'pick-method' && m.methods[choice]) {
      const method = m.methods[choice];
      if (method === 'two-phase' && m.snapshots.length > 1) {
        mode = { kind: 'pick-snapshot', nodeId: m.nodeId, source: m.source, snapshots: m.snapshots };
        return requestDraw();
      }
      mode = { kind: 'browse' };
      if (method === 'two-phase') return startTwoPhase(m.nodeId, m.source, m.snapshots[0]);
      void act(m.nodeId, `starting the initialization of ${m.nodeId} from ${m.source} (${method})`,
        `initialization of ${m.nodeId} from ${m.source} started (${method})`,
        (db) => startInit(db, { target: m.nodeId, source: m.source, method }));
      return;
    }
    if (m.kind === 'pick-snapshot' && m.snapshots[choice]) {
      mode = { kind: 'browse' };
      startTwoPhase(m.nodeId, m.source, m.snapshots[choice]);
    }
  }

  function onReinitKey(m: Extract<Mode, { kind: 'confirm-reinit' }>, name: string): void {
    const pick = Number(name) - 1;
    if (m.choices[pick]) mode = { ...m, chosen: pick };
    else if (name === 'UP' || name === 'k') mode = { ...m, chosen: Math.max(0, m.chosen - 1) };
    else if (name === 'DOWN' || name === 'j' || name === 'TAB') mode = { ...m, chosen: (m.chosen + 1) % m.choices.length };
    else if (name === 'y' || name === 'Y' || name === 'ENTER') {
      mode = { kind: 'browse' };
      const choice = m.choices[m.chosen];
      const scope = choice.kind === 'full' ? { full: true as const } : { tables: choice.tables };
      const what = choice.kind === 'full' ? 'the whole node' : choice.tables.join(', ');
      void act(m.nodeId, `starting the reinit of ${m.nodeId} (${what})`, `reinit of ${m.nodeId} started (${what})`, (db) => startReinit(db, m.nodeId, scope));
      return;
    }
    requestDraw();
  }

  // By id: the target's agent finds the directory in the source's record of it.
  function startTwoPhase(nodeId: string, source: string, snapshot: SnapshotOverview): void {
    void act(nodeId, `starting the two-phase initialization of ${nodeId} from ${source} (${snapshot.snapshot_id})`,
      `initialization of ${nodeId} from ${source} started (two-phase, snapshot ${snapshot.snapshot_id})`,
      (db) => startInit(db, { target: nodeId, source, method: 'two-phase', options: { snapshot: snapshot.snapshot_id } }));
  }

  // Only what the node's own start_init would accept is offered.
  async function askMethod(nodeId: string, source: string): Promise<void> {
    say(`reading the init methods of ${nodeId}…`);
    try {
      let methods = (await watch.initMethods(nodeId)).map((m) => m.method);
      // manual starts with the DBA's backup, on the command line: node prepare prints the steps
      let note: string | undefined = methods.includes('manual') ? `manual: steep-repl node prepare ${shellWord(nodeId)} --from ${shellWord(source)} --for pg_dump|pg_basebackup` : undefined;
      methods = methods.filter((m) => m !== 'manual');
      // two-phase loads a snapshot the source holds ready: offered with them, else said why not
      let snapshots: SnapshotOverview[] = [];
      if (methods.includes('two-phase')) {
        let why: string | undefined;
        try {
          snapshots = (await watch.readySnapshots(source)).slice(0, 9);
        } catch (err) {
          why = `two-phase: cannot read the snapshots of ${source}: ${describeError(err).replace(/\n/g, ' ')}`;
        }
        if (snapshots.length === 0) {
          methods = methods.filter((m) => m !== 'two-phase');
          why ??= `two-phase: no ready snapshot on ${source}`;
        }
        if (why) note = note ? `${why} · ${note}` : why;
      }
      methods = methods.slice(0, 9);
      if (methods.length === 0) return refuse(`${nodeId} offers no init method: none is marked available in steep_repl.init_methods${note ? `; ${note}` : ''}`);
      if (mode.kind !== 'browse') return;
      mode = { kind: 'pick-method', nodeId, source, methods, snapshots, note };
      requestDraw();
    } catch (err) {
      say(`reading the init methods of ${nodeId} failed: ${describeError(err).replace(/\n/g, ' ')}`, { color: 'red', bold: true });
    }
  }

  return new Promise<void>((resolve) => {
    const quit = async () => {
      if (closed) return;
      closed = true;
      if (drawTimer) clearTimeout(drawTimer);
      clearInterval(ticker);
      watch.off('change', requestDraw);
      term.off('key', onKey);
      term.off('resize', requestDraw);
      restore();
      await watch.stop();
      resolve();
    };
    const restore = () => {
      term.grabInput(false);
      term.hideCursor(false);
      term.styleReset();
      term.fullscreen(false);
    };
    const onKey = (name: string) => {
      if (name === 'CTRL_C') return void quit();
      if (mode.kind !== 'browse') return onPromptKey(name);
      const node = selected();
      switch (name) {
        case 'q':
        case 'Q':
          return void quit();
        case 'UP':
        case 'k':
          return move(-1);
        case 'DOWN':
        case 'j':
          return move(1);
        case 'ENTER':
        case 'd':
        case 'D':
          if (!node) return refuse('no node to show');
          overlayId = node.id;
          watch.watchDetail(overlayId);
          return requestDraw();
        case 'ESCAPE':
          overlayId = undefined;
          watch.watchDetail(undefined);
          return requestDraw();
        case 'i':
        case 'I':
          return node ? askStart(node) : refuse('no node selected');
        case 'c':
        case 'C':
          return node ? askCancel(node) : refuse('no node selected');
        case 'r':
        case 'R':
          return node ? askReinit(node) : refuse('no node selected');
        default:
          if (name.length === 1) refuse(`key ${name} does nothing here — ${keyHelp}`);
      }
    };
    // Signals end the view like q does, with the terminal restored.
    process.once('SIGTERM', () => void quit());
    process.once('SIGINT', () => void quit());
    process.once('SIGHUP', () => void quit());
    process.once('exit', () => {
      if (!closed) restore();
    });
    term.fullscreen(true);
    term.hideCursor(true);
    term.grabInput(true);
    term.on('key', onKey);
    term.on('resize', requestDraw);
    watch.on('change', requestDraw);
    // The clock, "last seen" and elapsed times move even when no row changes.
    const ticker = setInterval(requestDraw, 1000);
    draw();
  });
}
