"""The weightnb console script: every subcommand on tiny inputs, `--config`, `run.json`, and every user error as one line + exit 2."""
import contextlib, io, json, subprocess, sys, os
from pathlib import Path
import pytest
import torch
import weightnb
import weightnb.report
from weightnb.cli import main, build_parser
from weightnb.models import create_model, save_model, load_model
from weightnb.zoo import ZooSpec, Zoo, generate_zoo

torch.set_num_threads(1)
EXE = Path(sys.executable).parent/'weightnb'
ROOT = Path(__file__).resolve().parent.parent
PACKED = ROOT/'bench/results/zoo_fmnist_small.safetensors'
FMNIST = Path('/usr/share/datasets/fashion-mnist').is_dir()
SPEC = ZooSpec(arch='zoo_cnn_small', dataset='fashion-mnist', lr=1e-3, wd=0., opt='adam', batch_size=50, epochs=1,
               checkpoints=[0, 1], n_train=200, n_val=100, n_test=100, seed=3)


def run_exe(*args, timeout=300):
    return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, 'WEIGHTNB_OFFLINE': '1'}, cwd=ROOT)


def run(*argv):
    "main() in-process: (exit status, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: rc = main(list(map(str, argv)))
        except SystemExit as e: rc = e.code      # --help
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope='module')
def digits_models(tmp_path_factory):
    "A ResNet-20 trained one epoch on digits through the CLI, and an untrained one."
    d = tmp_path_factory.mktemp('models')
    rc, out, err = run('train', '--arch', 'resnet20', '--dataset', 'digits', '--epochs', 1, '--lr', 0.05, '--quiet',
                       '--device', 'cpu', '--out', d/'m.safetensors')
    assert rc == 0, err
    save_model(create_model('resnet20', num_classes=10, in_chans=1), d/'init.safetensors', dataset='digits')
    return d


def _run_json_ok(path, command):
    rec = json.loads(Path(path).read_text())
    assert rec['command'] == command and rec['device'] == 'cpu' and set(rec['versions']) == {'weightnb', 'torch', 'python'}
    assert 'seed' in rec and isinstance(rec['config'], dict)
    return rec


def test_help_and_version():
    r = run_exe('--help'); assert r.returncode == 0
    for c in ('demo', 'train', 'predict', 'analyse', 'zoo', 'sane', 'align', 'lab'): assert c in r.stdout
    r = run_exe('version'); assert r.returncode == 0 and r.stdout.strip() == f'weightnb {weightnb.__version__}'
    for argv in (['demo'], ['train'], ['predict'], ['analyse'], ['zoo', 'generate'], ['zoo', 'align'], ['zoo', 'info'], ['sane', 'train'], ['sane', 'embed'], ['sane', 'sample'],
                 ['zoo', 'pack'], ['align', 'fit'], ['align', 'sample'], ['lab']):
        rc, out, _ = run(*argv, '--help')
        assert rc == 0 and 'example: weightnb ' + argv[0] in out, argv


def test_errors_are_reported_not_tracebacks():
    r = run_exe('train', '--dataset', 'nope', '--quiet')
    assert r.returncode == 2 and 'Unknown dataset' in r.stderr and 'Traceback' not in r.stderr
    assert r.stderr.count('\n') == 1 and r.stderr.startswith('weightnb: error: ')


@pytest.mark.parametrize('argv,flag', [
    (['train', '--lr', '-1'], '--lr'), (['train', '--batch-size', '0'], '--batch-size'), (['train', '--n-train', '0'], '--n-train'),
    (['train', '--arch-kwargs', '{bad'], '--arch-kwargs'), (['train', '--arch-kwargs', '[1]'], '--arch-kwargs'),
    (['train', '--device', 'cuda:99'], '--device'), (['train', '--out', 'x.txt'], '--out'), (['train', '--opt', 'nope'], '--opt'),
    (['train', '--arch', 'zoo_cnn_small', '--arch-kwargs', '{"depth": 3}', '--dataset', 'digits'], '--arch-kwargs'),
    (['nope'], 'COMMAND'), (['demo', '--model', 'no/such.safetensors', '--quiet'], '--model'),
    (['demo', '--zoo', 'no/such/zoo', '--quiet'], '--zoo'),
    (['predict'], '--model'), (['predict', '--model', 'no/such.safetensors'], '--model'),
    (['predict', '--model', 'README.md'], '--model'), (['predict', '--model', 'README.md', '--hidden', '0'], '--hidden'),
    (['predict', '--model', 'README.md', '--mode', 'x'], '--mode'), (['analyse', '--model', 'README.md', '--d0s', '-1'], '--d0s'),
    (['analyse', '--model', 'README.md', '--factors', 'inf'], '--factors'), (['analyse', '--model', 'README.md'], '--model'),
    (['zoo'], 'ZOO_COMMAND'), (['zoo', 'info', 'no/such/zoo'], 'ZOO'), (['zoo', 'generate', '--spec', 'x.json'], '--spec'),
    (['zoo', 'generate', '--spec', 'README.md', '--out', 'z', '--n-models', '1'], '--spec'),
    (['zoo', 'generate', '--spec', 'README.md', '--out', 'z', '--n-models', '0'], '--n-models'),
    (['zoo', 'generate', '--spec', 'README.md', '--out', 'z', '--n-models', '1', '--executor', 'dask'], '--executor'),
    (['zoo', 'align', 'no/such/zoo'], 'ZOO'), (['zoo', 'pack', 'no/such/zoo', 'z.safetensors'], 'ZOO'),
    (['--config', 'no/such.json', 'lab'], '--config'), (['--config', 'README.md', 'lab'], '--config'),
])
def test_every_user_error_is_one_line_exit_2(argv, flag, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc, out, err = run(*argv)
    assert rc == 2 and err.startswith('weightnb: error: ') and err.count('\n') == 1 and flag in err, (rc, err)


def test_predict_on_digits_checks_the_dataset(digits_models):
    rc, _, err = run('predict', '--model', digits_models/'m.safetensors', '--dataset', 'cifar10', '--out', digits_models/'x')
    assert rc == 2 and '--dataset' in err and '3' in err and not (digits_models/'x').exists()


def test_train_saves_checkpoint_and_run_json(digits_models):
    assert load_model(digits_models/'m.safetensors').arch['in_chans'] == 1
    rec = _run_json_ok(digits_models/'m.run.json', 'train')
    assert rec['config']['epochs'] == 1 and rec['config']['arch'] == 'resnet20'


def test_predict_and_progressive(digits_models, tmp_path):
    common = ['--model', digits_models/'m.safetensors', '--hidden', 8, '--steps', 20, '--kernel-batch', 512, '--n-train', 100,
              '--n-val', 100, '--n-test', 100, '--device', 'cpu', '--quiet']
    rc, out, err = run('predict', *common, '--out', tmp_path/'p')
    assert rc == 0, err
    assert {'predictor.safetensors', 'model.safetensors', 'metrics.json', 'run.json'} <= {p.name for p in (tmp_path/'p').iterdir()}
    m = json.loads((tmp_path/'p'/'metrics.json').read_text()); assert 0 <= m['recon']['test_acc'] <= 1
    assert load_model(tmp_path/'p'/'model.safetensors').arch['in_chans'] == 1
    _run_json_ok(tmp_path/'p'/'run.json', 'predict')
    assert (tmp_path/'p'/'checkpoint'/'recon.pt').exists()
    rc, out, err = run('predict', *common, '--hidden', 9, '--out', tmp_path/'p')        # other flags: not resumed from p
    assert rc == 2 and '--checkpoint-dir' in err and 'hidden 8 (now 9)' in err and err.count('\n') == 1, err
    rc, out, err = run('predict', *common, '--hidden', 9, '--out', tmp_path/'p', '--checkpoint-dir', tmp_path/'ck9')
    assert rc == 0 and (tmp_path/'ck9'/'recon.pt').exists(), err
    rc, out, err = run('predict', *common, '--rounds', 1, '--seeds', 1, '--out', tmp_path/'q')
    assert rc == 0, err
    rounds = json.loads((tmp_path/'q'/'metrics.json').read_text())['rounds']
    assert [r['round'] for r in rounds] == [0, 1] and (tmp_path/'q'/'model.safetensors').exists()
    assert (tmp_path/'q'/'checkpoint'/'round1_seed0'/'recon.pt').exists()        # progressive resumes per round and seed


def test_analyse_writes_csv_and_html(digits_models, tmp_path):
    rc, out, err = run('analyse', '--model', digits_models/'m.safetensors', '--other', digits_models/'init.safetensors',
                       '--n-val', 100, '--n-test', 100, '--d0s', 1, '--factors', 0.5, '--alphas', 3, '--device', 'cpu',
                       '--out', tmp_path/'a')
    assert rc == 0, err
    names = {p.name for p in (tmp_path/'a').iterdir()}
    assert {'s_ratio.csv', 'frequency_sweep.csv', 'sv_sweep.csv', 'interpolation.csv', 'report.html', 'run.json'} <= names
    import pandas as pd
    s = pd.read_csv(tmp_path/'a'/'s_ratio.csv'); assert list(s.columns) == ['layer', 'model', 'other'] and s.model.between(0.5, 1).all()
    assert len(pd.read_csv(tmp_path/'a'/'interpolation.csv')) == 3
    assert 'plotly' in (tmp_path/'a'/'report.html').read_text()[:10**6]
    _run_json_ok(tmp_path/'a'/'run.json', 'analyse')


def test_zoo_info_on_the_committed_zoo():
    rc, out, err = run('zoo', 'info', PACKED, '--json')
    assert rc == 0, err
    info = json.loads(out)
    assert info['members'] == 120 and info['packed'] and sum(info['splits'].values()) == 120
    q = info['final_test_acc']; assert 0 < q['min'] <= q['q25'] <= q['median'] <= q['q75'] <= q['max'] <= 1
    rc, out, _ = run('zoo', 'info', PACKED); assert rc == 0 and 'final test accuracy' in out


@pytest.mark.skipif(not FMNIST, reason='Fashion-MNIST not installed')
def test_zoo_generate_pack_align(tmp_path):
    (tmp_path/'spec.json').write_text(SPEC.to_json())
    rc, out, err = run('zoo', 'generate', '--spec', tmp_path/'spec.json', '--n-models', 2, '--out', tmp_path/'zoo', '--device', 'cpu', '--quiet')
    assert rc == 0, err
    assert len(Zoo(tmp_path/'zoo')) == 2; _run_json_ok(tmp_path/'zoo'/'run.json', 'zoo generate')
    rc, out, err = run('zoo', 'pack', tmp_path/'zoo', tmp_path/'zoo.safetensors'); assert rc == 0, err
    _run_json_ok(tmp_path/'zoo.run.json', 'zoo pack')
    rc, out, err = run('zoo', 'align', tmp_path/'zoo.safetensors', '--reference', 'model_0000', '--out', tmp_path/'al', '--quiet')
    assert rc == 0, err
    assert len(Zoo(tmp_path/'al')) == 2 and (tmp_path/'al'/'run.json').exists()
    rc, _, err = run('zoo', 'align', tmp_path/'zoo.safetensors', '--out', tmp_path/'al', '--quiet')      # not empty now
    assert rc == 2 and err.count('\n') == 1 and '--out' in err
    bad = json.loads(SPEC.to_json()); bad['lr'] = {'loguniform': [1]}; (tmp_path/'bad.json').write_text(json.dumps(bad))
    rc, _, err = run('zoo', 'generate', '--spec', tmp_path/'bad.json', '--n-models', 1, '--out', tmp_path/'z2')
    assert rc == 2 and "'lr'" in err and not (tmp_path/'z2').exists()


def test_demo_is_a_thin_wrapper_over_run_demo(monkeypatch, tmp_path):
    seen = {}
    def fake_run_demo(cfg, out_dir, device, progress):
        seen.update(cfg=cfg, out=out_dir, device=device, progress=progress); Path(out_dir).mkdir(parents=True, exist_ok=True)
        return {'fake': True}
    monkeypatch.setattr(weightnb.report, 'run_demo', fake_run_demo)
    monkeypatch.setattr(weightnb.report, 'summary', lambda res: f'SUMMARY {res}')
    monkeypatch.chdir(ROOT)
    rc, out, err = run('demo', '--quick', '--seed', 5, '--out', tmp_path/'d', '--device', 'cpu', '--quiet')
    assert rc == 0, err
    cfg = seen['cfg']
    assert cfg == weightnb.report.DemoConfig.quick(seed=5) and seen['device'] == 'cpu' and not seen['progress']
    assert 'SUMMARY' in out
    assert _run_json_ok(tmp_path/'d'/'run.json', 'demo')['seed'] == 5
    rc, out, err = run('demo', '--out', tmp_path/'e', '--quiet', '--device', 'cpu')
    assert rc == 0 and seen['cfg'] == weightnb.report.DemoConfig()


def test_config_files(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    (tmp_path/'c.json').write_text(json.dumps({'dry_run': True, 'dir': 'nbs'}))
    rc, out, err = run('--config', tmp_path/'c.json', 'lab'); assert rc == 0 and 'jupyterlab' in out and 'nbs' in out, err
    (tmp_path/'c.yaml').write_text('dry-run: true\nno_browser: true\n')
    rc, out, _ = run('--config', tmp_path/'c.yaml', 'lab'); assert rc == 0 and '--no-browser' in out
    for text, key in (('{"dry_run": true, "learning_rate": 3}', 'learning_rate'), ('{"dry_run": "yes"}', 'dry_run')):
        (tmp_path/'b.json').write_text(text)
        rc, _, err = run('--config', tmp_path/'b.json', 'lab'); assert rc == 2 and key in err and err.count('\n') == 1
    (tmp_path/'t.json').write_text(json.dumps({'lr': -1, 'dataset': 'digits'}))
    rc, _, err = run('--config', tmp_path/'t.json', 'train'); assert rc == 2 and "'lr'" in err and '--lr' in err
    (tmp_path/'t.json').write_text('{bad')
    rc, _, err = run('--config', tmp_path/'t.json', 'train'); assert rc == 2 and 't.json' in err and err.count('\n') == 1


def test_config_values_become_defaults_and_flags_win(tmp_path):
    from weightnb.cli import apply_config, _subparser
    p = build_parser()
    apply_config(_subparser(p, ['train']), {'lr': 0.01, 'n-train': 50, 'arch_kwargs': {'shortcut': 'B'}, 'augment': True}, 'x.json')
    a = p.parse_args(['train']); assert (a.lr, a.n_train, a.arch_kwargs, a.augment) == (0.01, 50, {'shortcut': 'B'}, True)
    assert p.parse_args(['train', '--lr', '0.2']).lr == 0.2
    apply_config(_subparser(p, ['analyse']), {'d0s': [1, 2]}, 'x.json')
    assert p.parse_args(['analyse', '--model', 'README.md']).d0s == [1., 2.]


def test_lab_dry_run(monkeypatch):
    monkeypatch.chdir(ROOT)
    rc, out, _ = run('lab', '--dry-run'); assert rc == 0 and f'--notebook-dir={ROOT/"nbs"}' in out


def test_sane_train_embed_sample(tmp_path):
    rc, out, err = run('sane', 'train', PACKED, '--epochs', 1, '--d-model', 32, '--n-layers', 1, '--latent-dim', 8, '--n-perm', 4,
                       '--zoo-epochs', 5, '--device', 'cpu', '--quiet', '--out', tmp_path/'sane')
    assert rc == 0, err
    ck = tmp_path/'sane'/'sane_best.safetensors'; assert ck.exists(); _run_json_ok(tmp_path/'sane'/'run.json', 'sane train')
    rc, out, err = run('sane', 'embed', PACKED, '--sane', ck, '--split', 'test', '--out', tmp_path/'emb.csv', '--device', 'cpu')
    assert rc == 0, err
    import pandas as pd
    df = pd.read_csv(tmp_path/'emb.csv'); assert df.shape == (18, 9) and df.model.str.startswith('model_').all()
    _run_json_ok(tmp_path/'emb.run.json', 'sane embed')
    rc, out, err = run('sane', 'sample', PACKED, '--sane', ck, '--n', 2, '--prompts', 4, '--out', tmp_path/'s', '--device', 'cpu')
    assert rc == 0, err
    ms = sorted((tmp_path/'s').glob('sample_*.safetensors')); assert len(ms) == 2
    assert load_model(ms[0]).arch_name.startswith('zoo_cnn')
    for argv, flag in ((['sane', 'embed', PACKED, '--sane', 'README.md'], '--sane'), (['sane', 'embed', PACKED], '--sane'),
                       (['sane', 'sample', PACKED, '--sane', ck, '--n', '0'], '--n'), (['sane', 'train', 'no/such/zoo'], 'ZOO'),
                       (['sane'], 'SANE_COMMAND')):
        rc, _, err = run(*argv); assert rc == 2 and flag in err and err.count('\n') == 1, (argv, err)


@pytest.fixture(scope='module')
def class_zoo(tmp_path_factory):
    "Six zoo_cnn_smalls, one epoch on 300 Fashion-MNIST images of a random 3-class subset each (checkpoints 0 and 1)."
    d = tmp_path_factory.mktemp('zoo3')
    spec = ZooSpec(arch='zoo_cnn_small', dataset='fashion-mnist', n_classes=3, lr=3e-3, wd=0., opt='adam', batch_size=50,
                   epochs=1, checkpoints=[0, 1], n_train=300, n_val=100, n_test=100, seed=1)
    return generate_zoo(spec, d/'zoo', 6, device='cpu', progress=False).path


ALIGN_FIT = ['--epochs', 10, '--encoder-epochs', 10, '--latent-dim', 8, '--encoder-hidden', 32, '--hidden', 32,
             '--backbone-epochs', 1, '--backbone-n-train', 500, '--device', 'cpu', '--quiet']


@pytest.mark.skipif(not FMNIST, reason='Fashion-MNIST not installed')
def test_align_fit_and_sample(class_zoo, tmp_path, monkeypatch):
    monkeypatch.setenv('WEIGHTNB_CACHE', str(tmp_path/'cache'))                 # the backbone is cached here, not in ~/.cache
    rc, out, err = run('align', 'fit', class_zoo, '--encoder', 'wae', *ALIGN_FIT, '--out', tmp_path/'al')
    assert rc == 0, err
    fit = json.loads(out); lo, hi = fit['loss_range']
    n_train = len(Zoo(class_zoo).split('train'))
    assert fit['n_classes'] == 3 and fit['dataset'] == 'fashion-mnist' and fit['train_checkpoints'] == 2 * n_train and lo <= hi
    assert {'aligner.json', 'aligner.safetensors', 'run.json'} <= {p.name for p in (tmp_path/'al').iterdir()}
    assert _run_json_ok(tmp_path/'al'/'run.json', 'align fit')['config']['dataset'] == 'fashion-mnist'
    rc, out, err = run('align', 'sample', tmp_path/'al', '--classes', '8,0,1', '--target-loss', lo, '--n', 2, '--n-test', 200,
                       '--device', 'cpu', '--out', tmp_path/'s')
    assert rc == 0, err
    res = json.loads(out); assert res['classes'] == [0, 1, 8] and len(res['samples']) == 2
    assert all(0 <= r['test_acc'] <= 1 for r in res['samples']) and res == json.loads((tmp_path/'s'/'metrics.json').read_text())
    ms = sorted((tmp_path/'s').glob('sample_*.safetensors')); assert len(ms) == 2
    assert load_model(ms[0]).arch['num_classes'] == 3
    _run_json_ok(tmp_path/'s'/'run.json', 'align sample')
    (tmp_path/'c.yaml').write_text(f'classes: [1, 2, 3]\ntarget-loss: {hi}\nn: 1\nn_test: 100\ndevice: cpu\nout: {tmp_path/"s2"}\n')
    rc, out, err = run('--config', tmp_path/'c.yaml', 'align', 'sample', tmp_path/'al')              # --config applies too
    assert rc == 0 and json.loads(out)['classes'] == [1, 2, 3] and len(list((tmp_path/'s2').glob('*.safetensors'))) == 1, err
    rc, out, err = run('align', 'fit', class_zoo, '--encoder', 'wae', *ALIGN_FIT, '--out', tmp_path/'al2')     # same seed: same aligner
    sha = lambda d: json.loads((tmp_path/d/'aligner.json').read_text())['sha256']
    assert rc == 0 and sha('al') == sha('al2'), err
    rc, out, err = run('align', 'sample', tmp_path/'al2', '--classes', '8,0,1', '--target-loss', lo, '--n', 2, '--n-test', 200,
                       '--device', 'cpu', '--out', tmp_path/'s_again')
    assert rc == 0 and json.loads(out) == res, err
    rc, out, err = run('align', 'fit', class_zoo, '--encoder', 'pca', *ALIGN_FIT, '--out', tmp_path/'al_pca')
    assert rc == 0 and json.loads(out)['encoder'] == 'pca', err
    rc, out, err = run('align', 'fit', class_zoo, *ALIGN_FIT, '--n-probe', 16, '--decode-steps', 3, '--out', tmp_path/'al_fn')
    assert rc == 0 and json.loads(out)['encoder'] == 'functional', err                                   # the default encoder
    rc, out, err = run('align', 'sample', tmp_path/'al_fn', '--classes', '8,0,1', '--target-loss', lo, '--n', 2, '--n-test', 200,
                       '--device', 'cpu', '--out', tmp_path/'s_fn')
    assert rc == 0 and all(0 <= r['test_acc'] <= 1 for r in json.loads(out)['samples']), err
    for argv, flag in (([tmp_path/'al', '--classes', '0,1', '--target-loss', lo], '--classes'),            # fit on 3-class subsets
                       ([tmp_path/'al', '--classes', '0,1,12', '--target-loss', lo], '--classes'),         # no class 12
                       ([tmp_path/'al', '--classes', '0,x,2', '--target-loss', lo], '--classes'),
                       ([tmp_path/'al', '--classes', '0,1,1', '--target-loss', lo], '--classes'),
                       ([tmp_path/'al', '--classes', '0,1,2', '--target-loss', hi + 5], '--target-loss'),  # outside the zoo
                       ([tmp_path/'al', '--classes', '0,1,2', '--target-loss', -1], '--target-loss'),
                       ([tmp_path/'al', '--classes', '0,1,2', '--target-loss', 'nan'], '--target-loss'),
                       ([tmp_path/'al', '--classes', '0,1,2', '--target-loss', lo, '--dataset', 'digits'], '--dataset'),
                       ([tmp_path/'al', '--classes', '0,1,2', '--target-loss', lo, '--n', 0], '--n'),
                       ([class_zoo, '--classes', '0,1,2', '--target-loss', lo], 'DIR'),                    # not an aligner
                       ([tmp_path/'al', '--target-loss', lo], '--classes')):
        rc, _, err = run('align', 'sample', *argv, '--out', tmp_path/'bad')
        assert rc == 2 and err.startswith('weightnb: error: ') and flag in err and err.count('\n') == 1, (argv, err)
    assert not (tmp_path/'bad').exists()
    (tmp_path/'al'/'aligner.safetensors').write_bytes(b'truncated')
    rc, _, err = run('align', 'sample', tmp_path/'al', '--classes', '0,1,2', '--target-loss', lo)
    assert rc == 2 and 'DIR' in err and 'checksum' in err, err
    for argv, flag in (([tmp_path/'nothing'], 'ZOO'), ([class_zoo, '--encoder', 'vae'], '--encoder'),
                       ([class_zoo, '--epochs', 0], '--epochs'), ([class_zoo, '--dataset', 'nope'], '--dataset'),
                       ([class_zoo, '--zoo-epochs', 7, '--quiet'], '--zoo-epochs'), (['align'], 'ALIGN_COMMAND')):
        rc, _, err = run('align', 'fit', *argv, '--out', tmp_path/'bad') if argv != ['align'] else run('align')
        assert rc == 2 and flag in err and err.count('\n') == 1, (argv, err)
