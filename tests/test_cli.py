"""The weightnb console script: every subcommand on tiny inputs, `--config`, `run.json`, and every user error as one line + exit 2."""
import contextlib, io, json, subprocess, sys, os
from pathlib import Path
import pytest
import torch
import weightnb
import weightnb.report
from weightnb.cli import main, build_parser
from weightnb.models import create_model, save_model, load_model
from weightnb.zoo import ZooSpec, Zoo

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
    for c in ('demo', 'train', 'predict', 'analyse', 'zoo', 'lab'): assert c in r.stdout
    r = run_exe('version'); assert r.returncode == 0 and r.stdout.strip() == f'weightnb {weightnb.__version__}'
    for argv in (['demo'], ['train'], ['predict'], ['analyse'], ['zoo', 'generate'], ['zoo', 'align'], ['zoo', 'info'], ['sane', 'train'], ['sane', 'embed'], ['sane', 'sample'],
                 ['zoo', 'pack'], ['lab']):
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
    rc, out, err = run('predict', *common, '--rounds', 1, '--seeds', 1, '--out', tmp_path/'q')
    assert rc == 0, err
    rounds = json.loads((tmp_path/'q'/'metrics.json').read_text())['rounds']
    assert [r['round'] for r in rounds] == [0, 1] and (tmp_path/'q'/'model.safetensors').exists()


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
