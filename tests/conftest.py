import os
os.environ.setdefault('WEIGHTNB_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')
