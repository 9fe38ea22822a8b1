# Side virtualenvs of the golden-file scripts, sourced by tools/make_*.sh.
# Each function builds its venv once (a stamp file records the pins); the
# venvs are ignored by git and the default test suite never needs them.

PYTHON_SIDE=${PYTHON_SIDE:-$(command -v python3.11 || echo /root/.pyenv/versions/3.11.7/bin/python3)}

# torch_venv DIR: the CPU wheel of torch 2.13 (the local file pip takes for
# exactly this version; a plain `torch` would pull a CUDA build) and pinned
# reference releases: grad-cam 1.5.7 --no-deps (it requires torchvision,
# which does not import beside that wheel; the scripts stand in for the
# torchvision imports grad-cam never uses, golden_torch_net.py), its other
# requirements, captum, and RISE's (scikit-image, scipy).
torch_venv() {
    local venv=$1 stamp=$1/.installed-torch2.13.0-gradcam1.5.7-captum0.9.0
    [ -f "$stamp" ] && return
    test -x "$venv/bin/python" || "$PYTHON_SIDE" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet 'torch==2.13.0' 'numpy==2.4.6'
    "$venv/bin/python" -m pip install --quiet --no-deps 'grad-cam==1.5.7'
    "$venv/bin/python" -m pip install --quiet 'ttach==0.0.3' 'tqdm' \
        'opencv-python-headless==5.0.0.93' 'scikit-learn==1.9.1' 'scipy==1.17.1' \
        'matplotlib' 'Pillow' 'captum==0.9.0' 'scikit-image==0.26.0'
    touch "$stamp"
}

# xplique_venv DIR: xplique 2.0.2 and tf-keras-vis 0.8.7 on the project's
# TensorFlow. Both run on TF 2.21 / Keras 3.15, but xplique's metadata pins
# tensorflow[and-cuda]<=2.20 (a CUDA download): TensorFlow's CPU wheel at the
# project's version (constraints.txt has `tensorflow`; tensorflow-cpu is
# pinned to the same version by hand), xplique --no-deps plus what it imports.
xplique_venv() {
    local venv=$1 stamp=$1/.installed-tfcpu2.21.0-xplique2.0.2-tfkv0.8.7
    [ -f "$stamp" ] && return
    local tf_version
    tf_version=$(sed -n 's/^tensorflow==//p' constraints.txt)
    test -x "$venv/bin/python" || "$PYTHON_SIDE" -m venv "$venv"
    local pip=("$venv/bin/python" -m pip install --quiet -c constraints.txt)
    "${pip[@]}" "tensorflow-cpu==$tf_version" keras numpy scipy scikit-learn \
        opencv-python-headless pillow packaging
    # tfp 0.25 is the newest release; with Keras 3 it imports tf-keras (the
    # Keras 2 API) at TensorFlow's version. tf-keras asks for the
    # `tensorflow` distribution, which the CPU wheel already provides under
    # another name: --no-deps. The networks themselves are Keras 3.
    "${pip[@]}" 'tensorflow-probability==0.25.0' dm-tree decorator
    "${pip[@]}" --no-deps "tf-keras==$tf_version"
    # xplique's own pins (tensorflow[and-cuda]<=2.20, scikit-learn<=1.7.2,
    # scipy<=1.15.3, opencv-python, ruff) are not what it needs to run here.
    "${pip[@]}" --no-deps 'xplique==2.0.2'
    "${pip[@]}" einops matplotlib deprecated 'scikit-image<=0.25.2'
    "${pip[@]}" 'tf-keras-vis==0.8.7' imageio
    touch "$stamp"
}
