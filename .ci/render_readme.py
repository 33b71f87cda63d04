#!/usr/bin/env python3
"""Render README.md from index.ipynb (nbdev_readme needs Quarto, which cannot be installed offline here).

    python .ci/render_readme.py           # write README.md
    python .ci/render_readme.py --check   # exit 1 if README.md is out of date

Markdown cells are copied; code cells become ```python blocks with nbdev directives (`#| ...`) removed;
cells marked `#| hide` are left out. The first cell's `# title` and `> summary` become the README's header.
"""
import json, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent

def render(nb_path:Path)->str:
    nb = json.loads(nb_path.read_text())
    parts = []
    for cell in nb['cells']:
        src = ''.join(cell['source']).strip('\n')
        if cell['cell_type'] == 'markdown': parts.append(src)
        elif cell['cell_type'] == 'code':
            lines = src.split('\n')
            if any(l.strip() in ('#| hide', '#|hide') for l in lines): continue
            code = '\n'.join(l for l in lines if not l.lstrip().startswith('#|')).strip('\n')
            if code: parts.append(f'```python\n{code}\n```')
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text = render(root/'index.ipynb')
    readme = root/'README.md'
    if '--check' in sys.argv:
        if not readme.exists() or readme.read_text() != text:
            sys.exit('README.md is out of date: run `.venv/bin/python .ci/render_readme.py` and commit it.')
        print('README.md is up to date.')
    else: readme.write_text(text); print(f'wrote {readme}')
