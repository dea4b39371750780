// The page of racefree serve: no framework, no build step, nothing from
// elsewhere. Every refusal comes from the server, which is the authority on
// what is valid; the page shows its message.
'use strict';

const $ = (sel, el = document) => el.querySelector(sel);
const modes = ['naive', 'racefree'];
let info = null;

// api calls the server and returns its JSON answer; an answer that is not
// 2xx throws an Error carrying the server's message, the status and the
// process that answered.
async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  let data;
  try {
    data = await res.json();
  } catch {
    data = { error: `the answer (HTTP ${res.status}) is not JSON` };
  }
  if (!res.ok) {
    const e = new Error(data.error || `HTTP ${res.status}`);
    e.status = res.status;
    e.pid = data.pid;
    throw e;
  }
  return data;
}

function showMessage(text, kind) {
  const m = $('#message');
  m.textContent = text;
  m.className = kind || '';
  m.hidden = false;
}

function clearMessage() {
  $('#message').hidden = true;
  $('#message').textContent = '';
}

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

// fireAll starts n calls at once and hands each outcome to onDone as it
// arrives; it resolves when all have.
function fireAll(n, call, onDone) {
  const all = [];
  for (let i = 0; i < n; i++) {
    all.push(call(i).then((ans) => onDone(i, ans, null), (err) => onDone(i, null, err)));
  }
  return Promise.all(all);
}

function requestCount() {
  const n = Number($('#requests').value);
  if (!Number.isInteger(n) || n < 1 || n > 100) {
    showMessage('Requests per click must be a whole number from 1 to 100.');
    return null;
  }
  return n;
}

function setVerdict(col, text, good, data) {
  const v = $('.verdict', col);
  v.textContent = text;
  v.className = 'verdict ' + (good ? 'good' : 'bad');
  for (const [k, val] of Object.entries(data || {})) v.dataset[k] = String(val);
}

function resetColumn(col) {
  $('tbody', col).replaceChildren();
  const v = $('.verdict', col);
  v.textContent = '';
  v.className = 'verdict';
  for (const k of Object.keys(v.dataset)) delete v.dataset[k];
  const t = $('.totals', col);
  if (t) t.textContent = '';
}

// refusal returns the first answer the server refused as bad input (4xx).
const refusal = (outcomes) => outcomes.find((o) => o.err && o.err.status >= 400 && o.err.status < 500);

function plural(n, one, many) {
  return n === 1 ? `1 ${one}` : `${n} ${many}`;
}

// ---- 1. get-or-create ----

async function runGoc(ev) {
  ev.preventDefault();
  const sec = $('#goc');
  if (sec.dataset.state === 'running') return;
  clearMessage();
  const n = requestCount();
  if (n === null) return;
  const name = $('#name').value;
  sec.dataset.state = 'running';
  $('#goc-go').disabled = true;
  modes.forEach((m) => resetColumn($('#goc-' + m)));
  try {
    const results = {};
    for (const mode of modes) {
      const col = $('#goc-' + mode);
      const outcomes = [];
      let arrived = 0;
      const colours = new Map();
      await fireAll(n, () => api('POST', '/api/goc/' + mode, { name }), (i, ans, err) => {
        outcomes.push({ ans, err });
        const tr = document.createElement('tr');
        cell(tr, String(++arrived));
        if (err) {
          cell(tr, `HTTP ${err.status || '—'}: ${err.message}`, 'err').colSpan = 3;
          cell(tr, err.pid ? 'pid ' + err.pid : '');
          cell(tr, '');
        } else {
          if (!colours.has(ans.id)) colours.set(ans.id, colours.size % 6);
          cell(tr, ans.name);
          cell(tr, String(ans.id), 'id id' + colours.get(ans.id));
          cell(tr, ans.created ? 'created' : 'found');
          cell(tr, 'pid ' + ans.pid);
          cell(tr, ans.ms.toFixed(1));
        }
        $('tbody', col).appendChild(tr);
      });
      const refused = refusal(outcomes);
      if (refused) {
        showMessage(`The server refused the request (HTTP ${refused.err.status}): ${refused.err.message}. Nothing was written.`);
        setVerdict(col, 'Refused: nothing written.', true, { refused: refused.err.status });
        sec.dataset.state = 'refused';
        return;
      }
      results[mode] = outcomes;
    }
    const rows = await api('GET', '/api/goc/rows?name=' + encodeURIComponent(name));
    for (const mode of modes) {
      const col = $('#goc-' + mode);
      const ok = results[mode].filter((o) => o.ans).map((o) => o.ans);
      const failed = results[mode].length - ok.length;
      const ids = new Set(ok.map((a) => a.id));
      const created = ok.filter((a) => a.created).length;
      const pids = new Set(ok.map((a) => a.pid));
      const count = rows[mode].rows;
      let text = `${plural(ok.length, 'answer', 'answers')} from ${plural(pids.size, 'process', 'processes')}, ` +
        `${plural(ids.size, 'different id', 'different ids')}; ${plural(created, 'request', 'requests')} created a row. ` +
        `The table now holds ${plural(count, 'row', 'rows')} named “${rows.name}”`;
      const dup = ids.size > 1 || count > 1;
      if (dup) {
        text = '✗ ' + text + ': duplicates, which every later lookup of this name will trip over.';
      } else if (mode === 'naive') {
        text = '✓ ' + text + '. This time the race did not show: click again with a new name.';
      } else {
        text = '✓ ' + text + '.';
      }
      if (failed > 0) text += ` ${plural(failed, 'request', 'requests')} failed: ${results[mode].find((o) => o.err).err.message}`;
      setVerdict(col, text, !dup && failed === 0, { ids: ids.size, rows: count, created, errors: failed, pids: pids.size });
    }
    sec.dataset.state = 'done';
  } catch (e) {
    showMessage('Something went wrong: ' + e.message);
    sec.dataset.state = 'error';
  } finally {
    sec.dataset.run = String(Number(sec.dataset.run) + 1);
    $('#goc-go').disabled = false;
  }
}

// ---- 2. transfers ----

function showTotals(col, what, acc) {
  const t = $('.totals', col);
  t.textContent = (t.textContent ? t.textContent + ' → ' : '') +
    `${what}: ${acc.balances[0]} + ${acc.balances[1]} = ${acc.total}`;
}

async function runTransfers() {
  const sec = $('#tx');
  if (sec.dataset.state === 'running') return;
  clearMessage();
  const n = requestCount();
  if (n === null) return;
  sec.dataset.state = 'running';
  $('#tx-go').disabled = true;
  modes.forEach((m) => resetColumn($('#tx-' + m)));
  const transfers = [];
  for (let i = 0; i < n; i++) {
    const amount = 1 + Math.floor(Math.random() * 200);
    transfers.push(i % 2 === 0 ? { from: 1, to: 2, amount } : { from: 2, to: 1, amount });
  }
  try {
    const before = await api('GET', '/api/transfer/state');
    const results = {};
    for (const mode of modes) {
      const col = $('#tx-' + mode);
      showTotals(col, 'before', before[mode]);
      const outcomes = [];
      let arrived = 0;
      await fireAll(n, (i) => api('POST', '/api/transfer/' + mode, transfers[i]), (i, ans, err) => {
        outcomes.push({ ans, err });
        const tr = document.createElement('tr');
        cell(tr, String(++arrived));
        const t = transfers[i];
        cell(tr, `${t.amount} from ${t.from} to ${t.to}`);
        if (err) {
          cell(tr, `HTTP ${err.status || '—'}: ${err.message}`, 'err');
          cell(tr, err.pid ? 'pid ' + err.pid : '');
          cell(tr, '');
        } else {
          cell(tr, ans.done ? 'done' : 'declined: not enough funds');
          cell(tr, 'pid ' + ans.pid);
          cell(tr, ans.ms.toFixed(1));
        }
        $('tbody', col).appendChild(tr);
      });
      const refused = refusal(outcomes);
      if (refused) {
        showMessage(`The server refused the transfer (HTTP ${refused.err.status}): ${refused.err.message}. Nothing was written.`);
        sec.dataset.state = 'refused';
        return;
      }
      results[mode] = outcomes;
    }
    const after = await api('GET', '/api/transfer/state');
    for (const mode of modes) {
      const col = $('#tx-' + mode);
      showTotals(col, 'after', after[mode]);
      const failed = results[mode].filter((o) => o.err).length;
      const b = before[mode].total, a = after[mode].total;
      // What the transfers that reported "done" add up to.
      const want = [...before[mode].balances];
      results[mode].forEach((o) => {
        if (o.ans && o.ans.done) {
          want[o.ans.from - 1] -= o.ans.amount;
          want[o.ans.to - 1] += o.ans.amount;
        }
      });
      const got = after[mode].balances;
      const lost = got[0] !== want[0] || got[1] !== want[1];
      let text;
      if (a > b) {
        text = `✗ ${a - b} was created out of nothing: the total went from ${b} to ${a}.`;
      } else if (a < b) {
        text = `✗ ${b - a} vanished: the total went from ${b} to ${a}.`;
      } else {
        text = `✓ The total is unchanged: ${a}.`;
      }
      if (lost) {
        text += ` ✗ The transfers that reported “done” add up to ${want[0]} and ${want[1]}, ` +
          `but the accounts hold ${got[0]} and ${got[1]}: transfers were lost.`;
      } else if (a === b) {
        text += ` Both accounts hold what the transfers that reported “done” add up to (${want[0]} and ${want[1]}).`;
      }
      if (failed > 0) text += ` ${plural(failed, 'transfer', 'transfers')} failed: ${results[mode].find((o) => o.err).err.message}`;
      setVerdict(col, text, a === b && !lost && failed === 0, { before: b, after: a, lost, errors: failed });
    }
    sec.dataset.state = 'done';
  } catch (e) {
    showMessage('Something went wrong: ' + e.message);
    sec.dataset.state = 'error';
  } finally {
    sec.dataset.run = String(Number(sec.dataset.run) + 1);
    $('#tx-go').disabled = false;
  }
}

// ---- reset and start ----

async function runReset() {
  const btn = $('#reset');
  btn.disabled = true;
  try {
    await api('POST', '/api/reset', {});
    for (const id of ['#goc-naive', '#goc-racefree', '#tx-naive', '#tx-racefree']) resetColumn($(id));
    showMessage(`Reset: every name deleted, both accounts hold ${info ? info.initial_balance : 1000} again.`, 'info');
    document.body.dataset.resets = String(Number(document.body.dataset.resets || 0) + 1);
  } catch (e) {
    showMessage('Reset failed: ' + e.message);
  } finally {
    btn.disabled = false;
  }
}

async function start() {
  $('#goc-form').addEventListener('submit', runGoc);
  $('#tx-go').addEventListener('click', runTransfers);
  $('#reset').addEventListener('click', runReset);
  try {
    info = await api('GET', '/api/info');
  } catch (e) {
    $('#info').textContent = 'The server did not answer: ' + e.message;
    return;
  }
  $('#requests').value = String(info.requests);
  $('#info').textContent = `Engine: ${info.server} · ${plural(info.procs, 'worker process', 'worker processes')} ` +
    `(this page came from pid ${info.pid}) · isolation level: ${info.isolation} · think time: ${info.think_ms} ms`;
  $('#think').textContent = info.think_ms > 0
    ? `Think time (--think ${info.think_ms}ms): the naive handlers wait ${info.think_ms} ms between their read and ` +
      'each write, where a real handler does other work; it widens the race window that a fast idle machine ' +
      'leaves very narrow. racefree’s get-or-create and transfer are each one call with no place for a pause ' +
      'inside, and need none — the unique index decides who creates the row; the transfer locks both rows in id ' +
      'order and checks the funds on the locked balance — so each waits as long just before the call, which lines ' +
      'the requests up even closer.'
    : 'Think time is off (--think 0): the naive handlers write right after they read, so the race shows only when ' +
      'requests overlap within a fraction of a millisecond.';
  document.body.dataset.ready = 'true';
}

start();
