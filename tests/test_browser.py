"""End to end in a real browser: JupyterLab serves a temporary copy of nbs/tutorials/dashboards.ipynb, Debian's
chromium (driven by Python Playwright, nothing downloaded) runs all cells, every dashboard's plot must render, a
control changed through the page must change its plot (the embedding dropdown also switches to the SANE model
embedding of a SANE trained in the notebook; the align pair view renders), and each dashboard is saved as a
screenshot under tests/_artifacts/browser/. Skipped, with the reason, only when chromium or Playwright is not installed."""
import json, os, secrets, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / 'nbs' / 'tutorials' / 'dashboards.ipynb'
ARTIFACTS = ROOT / 'tests' / '_artifacts' / 'browser'
CHROME_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
               '--disable-sync', '--no-first-run']
LINE, BARS, HEATMAP = '.scatterlayer path.js-line', '.barlayer .point path', '.hm image'
DASHBOARDS = {'landscapedashboard': LINE, 'sratiodashboard': BARS, 'frequencysweepdashboard': LINE,
              'embeddingheatmapdashboard': HEATMAP, 'sweepdashboard': LINE}


def _chromium():
    for c in (os.environ.get('CHROMIUM'), '/usr/bin/chromium', shutil.which('chromium'), shutil.which('chromium-browser')):
        if c and Path(c).is_file() and os.access(c, os.X_OK): return c
    return None


CHROMIUM = _chromium()
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason='chromium not found (apt-get install chromium, or set $CHROMIUM)'),
              pytest.mark.skipif(sync_playwright is None, reason='Python playwright is not installed (a dev requirement)')]


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _get_json(url):
    with urllib.request.urlopen(url, timeout=2) as r: return json.load(r)


def _settings(cfg: Path):
    "Isolated JupyterLab settings: no news toast, no windowing (every cell is in the DOM)."
    for rel, text in [('@jupyterlab/apputils-extension/notification.jupyterlab-settings', '{"fetchNews": "false", "checkForUpdates": false}'),
                      ('@jupyterlab/notebook-extension/tracker.jupyterlab-settings', '{"windowingMode": "none"}')]:
        p = cfg / 'settings' / rel; p.parent.mkdir(parents=True, exist_ok=True); p.write_text(text)


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp('lab')               # a copy: autosave never writes into the repository
    shutil.copy(NOTEBOOK, root / 'dashboards.ipynb')
    cfg = tmp_path_factory.mktemp('labcfg'); _settings(cfg)
    port, token = _free_port(), secrets.token_hex(16)
    base = f'http://127.0.0.1:{port}'
    env = dict(os.environ, WEIGHTNB_TUTORIAL_FAST='1', WEIGHTNB_REPO=str(ROOT), WEIGHTNB_OFFLINE='1', MPLBACKEND='Agg',
               WEIGHTNB_CACHE=str(cfg / 'cache'),       # finished sweep runs of earlier sessions are not reused
               OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    log = open(cfg / 'lab.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--no-browser', '--allow-root', '--ServerApp.ip=127.0.0.1',
                             f'--ServerApp.token={token}', f'--port={port}', f'--ServerApp.root_dir={root}',
                             f"--LabApp.workspaces_dir={cfg / 'ws'}", f"--LabApp.user_settings_dir={cfg / 'settings'}"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        deadline = time.time() + 90
        while True:
            try: _get_json(f'{base}/api/status?token={token}'); break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"jupyter lab did not start: {(cfg / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield dict(base=base, token=token, pid=proc.pid, log=cfg / 'lab.log')
    finally:                                            # stop only the server this fixture started, whatever happened
        proc.terminate()
        try: proc.wait(20)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()
        log.close()


@pytest.fixture
def page():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROME_ARGS)
        try:
            pg = browser.new_page(viewport={'width': 1400, 'height': 1000})
            pg.set_default_timeout(180_000)
            yield pg
        finally: browser.close()


def _kernel(lab):
    for s in _get_json(f"{lab['base']}/api/sessions?token={lab['token']}"):
        if s['path'].endswith('dashboards.ipynb'): return s['kernel']
    return None


def _wait_kernel(lab, idle_polls=1, timeout=180):
    "Wait until the notebook's kernel has a page attached and is idle for `idle_polls` polls in a row."
    deadline, n = time.time() + timeout, 0
    while time.time() < deadline:
        k = _kernel(lab)
        n = n + 1 if k and k['execution_state'] == 'idle' and k['connections'] > 0 else 0
        if n >= idle_polls: return
        time.sleep(0.5)
    raise TimeoutError(f"the kernel did not become idle in {timeout} s; see {lab['log']}")


def _attr(page, css, attr):
    return page.evaluate("([css, attr]) => { const e = document.querySelector(css); return e && e.getAttribute(attr); }", [css, attr])


def _wait_change(page, css, attr, old):
    page.wait_for_function("([css, attr, old]) => { const e = document.querySelector(css); return e && e.getAttribute(attr) !== old; }",
                           arg=[css, attr, old])


def test_dashboards_in_jupyterlab(lab, page):
    try: _check_dashboards(lab, page)
    except Exception:                                    # keep what the page showed and the server log for diagnosis
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / 'failure.png'), full_page=True)
            info = page.evaluate('''() => [...document.querySelectorAll('[class*="weightnb-"][class*="dashboard"]')].map(e => ({
                cls: e.className, plots: e.querySelectorAll('.js-plotly-plot').length, traces: e.querySelectorAll('.trace').length,
                size: [e.clientWidth, e.clientHeight], status: (e.querySelector('.weightnb-status') || {}).textContent,
                message: (e.querySelector('.weightnb-message') || {}).textContent}))''')
            (ARTIFACTS / 'failure_info.json').write_text(json.dumps(info, indent=1))
        except Exception as e: (ARTIFACTS / 'failure_info.json').write_text(repr(e))
        shutil.copy(lab['log'], ARTIFACTS / 'failure_lab.log')
        raise


def _check_dashboards(lab, page):
    t0 = time.time()
    page.goto(f"{lab['base']}/lab/tree/dashboards.ipynb?token={lab['token']}")
    page.wait_for_selector('.jp-Notebook')
    _wait_kernel(lab)
    page.locator('.lm-MenuBar-itemLabel', has_text='Run').first.click()
    page.locator('.lm-Menu-itemLabel', has_text='Run All Cells').first.click()
    try: page.locator('.jp-Dialog .jp-mod-accept').click(timeout=2000)   # only when no kernel was attached
    except Exception: pass

    # every dashboard renders a plot with content
    for cls, mark in DASHBOARDS.items():
        page.wait_for_selector(f'.weightnb-{cls} .js-plotly-plot {mark}', state='attached')
    _wait_kernel(lab, idle_polls=6)                      # Run All finished
    errors = page.locator('[data-mime-type="application/vnd.jupyter.error"]')
    assert errors.count() == 0, errors.first.inner_text()
    for cls in DASHBOARDS:                               # no dashboard shows an error message
        for msg in page.locator(f'.weightnb-{cls} .weightnb-message').all(): assert 'Error' not in msg.inner_text()

    # the sweep's dashed 'original' line is flat (a batched multi-trace restyle once dropped its y values in the browser)
    d = page.evaluate("() => document.querySelectorAll('.weightnb-sweepdashboard .js-plotly-plot .scatterlayer path.js-line')[1].getAttribute('d')")
    ys = {round(float(p.split(',')[1]), 1) for p in d.replace('M', ' ').replace('L', ' ').split()}
    assert len(ys) == 1, d

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # landscape: the steps slider, typed into its readout, redraws the curves
    line = f'.weightnb-landscapedashboard .js-plotly-plot {LINE}'
    d0 = _attr(page, line, 'd'); assert d0 and d0.startswith('M')
    readout = page.locator('.weightnb-landscapedashboard .weightnb-control-steps .widget-readout')
    readout.click(); page.keyboard.press('Control+A'); page.keyboard.type('3'); page.keyboard.press('Enter')
    _wait_change(page, line, 'd', d0)
    page.wait_for_function("css => document.querySelector(css).textContent.startsWith('done: 3')",
                           arg='.weightnb-landscapedashboard .weightnb-status')
    # S_ratio: the view toggle redraws the bars
    bars = f'.weightnb-sratiodashboard .js-plotly-plot {BARS}'
    b0 = _attr(page, bars, 'd')
    page.locator('.weightnb-sratiodashboard .weightnb-control-view button', has_text='absolute').click()
    _wait_change(page, bars, 'd', b0)
    # embeddings: the embedding dropdown redraws the heatmap
    hm = f'.weightnb-embeddingheatmapdashboard .js-plotly-plot {HEATMAP}'
    h0 = _attr(page, hm, 'href'); assert h0 and h0.startswith('data:image/png')
    emb = page.locator('.weightnb-embeddingheatmapdashboard .weightnb-control-embedding select').first   # the zoo's (the second is the pair view)
    emb.select_option('flattened weights')
    _wait_change(page, hm, 'href', h0)
    # ... and to the SANE model embedding (a SANE trained in the notebook, passed through sane_embeddings)
    page.wait_for_function("css => document.querySelector(css).textContent.startsWith('done')", arg='.weightnb-embeddingheatmapdashboard .weightnb-status')
    h1 = _attr(page, hm, 'href'); emb.select_option('SANE model embedding')
    _wait_change(page, hm, 'href', h1)
    page.wait_for_function("css => document.querySelector(css).textContent.startsWith('done')", arg='.weightnb-embeddingheatmapdashboard .weightnb-status')
    title = page.locator('.weightnb-embeddingheatmapdashboard .js-plotly-plot .gtitle').first.text_content()
    assert title.startswith('SANE model embedding'), title

    # the second embedding dashboard is the align pair view (thesis Figure 4.3): a rendered heatmap with its title
    pair = page.locator('.weightnb-embeddingheatmapdashboard').nth(1)
    assert pair.locator('.js-plotly-plot .hm image').count() == 1
    assert pair.locator('.js-plotly-plot .gtitle').first.text_content().startswith('weight latent vs projected (D, R)')

    shots = {cls: page.locator(f'.weightnb-{cls}').first for cls in DASHBOARDS} | {'embeddingheatmapdashboard_pair': pair}
    for name, box in shots.items():
        box.scroll_into_view_if_needed()
        box.screenshot(path=str(ARTIFACTS / f'{name}.png'))
    assert all((ARTIFACTS / f'{name}.png').stat().st_size > 5_000 for name in shots)
    print(f'browser test: {time.time() - t0:.1f} s after the server started')
