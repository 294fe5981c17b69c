// Loads a cohortrun --trace file into a real viewer, Chromium's DevTools Performance panel, the
// way a user does ("Load profile..."), checks what the panel's own trace engine made of it, and
// takes a screenshot. Run by scripts/check-trace-viewer (which installs Chromium and
// playwright-core); not part of CI.
//
//   node check_viewer.js TRACE.json OUT.png [FROM] [CHROMIUM]
//
// FROM (0..1, default 0): the screenshot shows the job from that fraction of its length on.
//
// Checks: the file loads without an error; one thread track per rank, named "rank R (pid P)",
// holding that rank's slices; every flow in the file (send -> receive) is bound by DevTools to
// two slices, the first a send on the sender's track, the second on the receiver's. Also tries
// chrome://tracing and says whether this Chromium still has it.
'use strict';
const fs = require('fs');
const { chromium } = require('playwright-core');

const [file, out, from = '0', exe = '/usr/bin/chromium'] = process.argv.slice(2);
if (!file || !out) {
  console.error('usage: node check_viewer.js TRACE.json OUT.png [FROM] [CHROMIUM]');
  process.exit(2);
}
const trace = JSON.parse(fs.readFileSync(file, 'utf8'));
const ranks = trace.otherData.ranks;
const slices = trace.traceEvents.filter(e => e.ph === 'X');
const flowsInFile = trace.traceEvents.filter(e => e.ph === 's').length;
let failures = 0;
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
}

(async () => {
  const browser = await chromium.launch({
    executablePath: exe, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--allow-chrome-scheme-url'],
  });
  // chrome://tracing (the catapult viewer): informational only.
  const probe = await browser.newPage();
  try {
    await probe.goto('chrome://tracing');
    console.log(`info chrome://tracing opened as ${probe.url()}` +
                (/debug-webuis-disabled/.test(probe.url()) ? ' (internal debugging pages are disabled)' : ''));
  } catch (e) {
    console.log(`info chrome://tracing does not load in this Chromium (${e.message.split('\n')[0]})`);
  }
  await probe.close();

  // The DevTools Performance panel, standalone, loading the file through its own file picker.
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  const errors = [];
  page.on('pageerror', e => errors.push(e.message));
  await page.goto('devtools://devtools/bundled/trace_app.html');
  await page.waitForTimeout(2000);
  await page.keyboard.press('Escape');  // the "debugging connection was closed" notice
  await page.getByText('Performance', { exact: true }).first().click();
  await page.waitForTimeout(1000);
  const [chooser] = await Promise.all([
    page.waitForEvent('filechooser', { timeout: 20000 }),
    page.locator('[aria-label^="Load"]').first().click(),
  ]);
  await chooser.setFiles(file);
  await page.waitForFunction(async () => {
    const T = await import('./panels/timeline/timeline.js');
    return T.TimelinePanel.TimelinePanel.instance().hasActiveTrace();
  }, null, { timeout: 60000 });
  await page.waitForTimeout(1500);

  const seen = await page.evaluate(async (from) => {
    const T = await import('./panels/timeline/timeline.js');
    const panel = T.TimelinePanel.TimelinePanel.instance();
    const parsed = panel.getParsedTraceForLayoutTests();
    const data = parsed.data ?? parsed;
    const threads = [];
    for (const [, proc] of data.Renderer.processes) {
      for (const [tid, th] of proc.threads) {
        threads.push({ tid, name: th.name, slices: th.entries.filter(e => e.ph === 'X').length });
      }
    }
    const flows = data.Flows.flows.map(f => f.map(e => ({ name: e.name, tid: e.tid, ts: e.ts })));
    // Select the send of the last message between two ranks (DevTools draws the arrows of the
    // selected event's flows), then show the whole job.
    const sends = data.Flows.flows.map(f => f.find(e => /^i?send to /.test(e.name)))
                      .filter(e => e && !/to ${e.tid - 1}$/.test(e.name));
    const last = sends.reduce((a, e) => (a === null || e.ts > a.ts ? e : a), null);
    if (last) panel.select(T.TimelineSelection.selectionFromEvent(last));
    const B = await import('./services/trace_bounds/trace_bounds.js');
    const bounds = B.TraceBounds.BoundsManager.instance();
    const all = bounds.state().micro.entireTraceBounds;
    const min = all.min + Math.round((all.max - all.min) * from);
    bounds.setTimelineVisibleWindow({ min, max: all.max, range: all.max - min });
    return { threads, flows, selected: last ? last.name + ' on tid ' + last.tid : null };
  }, Number(from));

  console.log(`info selected ${seen.selected}`);
  check(errors.length === 0, `no page errors (${errors.join('; ')})`);
  const body = await page.locator('body').innerText();
  check(!/failed to load|could not load|error/i.test(body.split('\n').slice(0, 20).join(' ')), 'no load error shown');
  check(seen.threads.length === ranks, `${seen.threads.length} thread tracks for ${ranks} ranks`);
  for (let r = 0; r < ranks; r++) {
    const t = seen.threads.find(t => t.tid === r + 1);
    const mine = slices.filter(e => e.tid === r + 1).length;
    check(t && t.name.startsWith(`rank ${r} (pid `) && t.slices === mine,
          `rank ${r}: track ${t ? JSON.stringify(t.name) : 'missing'} with ${t ? t.slices : 0} of its ${mine} slices`);
  }
  // (DevTools lists a flow's two events in either order.)
  const isSend = e => /^i?send to /.test(e.name);
  const isReceive = e => /^(message received|irecv done)/.test(e.name);
  const bound = seen.flows.filter(f => f.length === 2 && f.some(isSend) && f.some(isReceive));
  for (const f of seen.flows.filter(f => !bound.includes(f)).slice(0, 5)) console.log('     unbound:', JSON.stringify(f));
  check(bound.length === flowsInFile, `${bound.length} of ${flowsInFile} flows bound from a send to a receive`);

  // Expand the job and each rank's track (bottom first: rows move as they open), then shoot.
  await page.mouse.click(1571, 77);  // the keyboard-shortcuts popover, if shown
  await page.mouse.click(15, 39);    // hide the sidebar
  await page.waitForTimeout(500);
  await page.mouse.click(60, 129);   // the process group
  await page.waitForTimeout(800);
  for (let r = ranks - 1; r >= 0; r--) {
    await page.mouse.click(20, 146 + Math.round(20.9 * r));
    await page.waitForTimeout(400);
  }
  await page.mouse.move(800, 880);
  await page.waitForTimeout(800);
  // The tracks only: the job header and each rank's two rows.
  await page.screenshot({ path: out, clip: { x: 0, y: 0, width: 1600, height: 150 + 55 * ranks } });
  console.log(`info screenshot: ${out}`);
  await browser.close();
  console.log(failures === 0 ? 'check_viewer: OK' : `check_viewer: ${failures} check(s) failed`);
  process.exit(failures === 0 ? 0 : 1);
})().catch(e => {
  console.error(e);
  process.exit(1);
});
