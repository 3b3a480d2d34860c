#!/usr/bin/env bash
# The long trainings behind the issues' targets, one after another, each resumable:
# `kerasdl train` checkpoints every epoch and a finished run is skipped, so after an
# interruption the same command carries on where it stopped. Each run's console output
# is appended to RUN/train.log (benchmarks/long_run_record.py sums its epoch times).
#
#   nohup nice -n 19 bash benchmarks/long_runs.sh >> saved_models/long_runs.log 2>&1 &
#
# Pass names to run only some: bash benchmarks/long_runs.sh sst2 shakespeare
# Never edit this file while a queue runs it: bash reads a script as it goes.
set -uo pipefail
cd "$(dirname "$0")/.."
export TFDS_DATA_DIR="${TFDS_DATA_DIR:-$(cd ../shared/data/tfds 2>/dev/null && pwd)}"
PY=.venv/bin/python
KERASDL=.venv/bin/kerasdl

train() {  # train RUN_DIR MODEL DATASET
  local run=$1 model=$2 dataset=$3
  if [ -f "$run/model.keras" ]; then echo "[$(date -u +%H:%M)] $run finished"; return; fi
  mkdir -p "$run"
  echo "[$(date -u +%H:%M)] training $model on $dataset -> $run"
  "$KERASDL" train "$model" --dataset "$dataset" --output "$run" >> "$run/train.log" 2>&1
  local rc=$?  # before the echo: its $(date) would reset $?
  echo "[$(date -u +%H:%M)] $run exit $rc"
}

want() { [ $# -eq 0 ] || [[ " ${SELECTED} " == *" $1 "* ]]; }
SELECTED="$*"

# Issue 17: a bidirectional LSTM at >= 82% on SST-2 validation.
want sst2 && train saved_models/bilstm_classifier_sst2 bilstm_classifier glue/sst2
# Issue 17: the same target with BiLSTM-max (max over time, embedding dropout, decay).
want sst2max && train saved_models/bilstm_max_classifier_sst2 bilstm_max_classifier glue/sst2
# Issue 17, notebook 14: LSTM, GRU and TextCNN on SST-2 with their recipes.
want ch14 && for m in lstm_classifier gru_classifier textcnn; do
  train saved_models/ch14_sst2/$m $m glue/sst2; done
# Issue 17: a character LSTM at <= 1.6 nats/char on Tiny Shakespeare validation.
want shakespeare && train saved_models/lstm_lm_tiny_shakespeare lstm_lm tiny_shakespeare
# Issue 16: MobileNetV2-0.35 and EfficientNet-B0 on CIFAR-10, exported and timed.
want mobile && { mkdir -p saved_models/mobile_cifar10;
  $PY benchmarks/mobile.py >> saved_models/mobile_cifar10/train.log 2>&1; }
# Issue 17: the seq2seq model with Bahdanau attention, >= 28 BLEU on test_2016_flickr.
want multi30k && train saved_models/seq2seq_bahdanau_multi30k seq2seq_bahdanau multi30k
# Issue 18: a small character GPT at <= 1.6 nats/char on Tiny Shakespeare validation.
want gpt && train saved_models/gpt_char_small_tiny_shakespeare gpt_char_small tiny_shakespeare
# Issue 18: a small encoder-decoder Transformer, >= 35 BLEU on test_2016_flickr.
want transformer && train saved_models/transformer_small_multi30k transformer_small multi30k
# Issue 17: SimpleRNN against LSTM and GRU on the adding problem.
want adding && $PY benchmarks/adding_problem.py
# Issue 18, notebook 20: BERT-Mini on SST-2 from scratch, and after masked-LM pretraining
# on SST-2's training sentences (the classifier's split plan: no validation sentence seen).
want bert && {
  train saved_models/ch20_sst2/bert_mini_scratch bert_mini glue/sst2
  train saved_models/ch20_sst2/bert_mini_mlm bert_mini_mlm glue/sst2
  run=saved_models/ch20_sst2/bert_mini_pretrained
  if [ -f saved_models/ch20_sst2/bert_mini_mlm/model.keras ] && [ ! -f $run/model.keras ]; then
    mkdir -p $run; echo "[$(date -u +%H:%M)] fine-tuning bert_mini from the MLM run -> $run"
    "$KERASDL" train bert_mini --dataset glue/sst2 --output $run \
      --from saved_models/ch20_sst2/bert_mini_mlm >> $run/train.log 2>&1
    rc=$?; echo "[$(date -u +%H:%M)] $run exit $rc"
  fi
}
# Issue 19: the convolutional VAE on stochastically binarised MNIST, test negative ELBO
# <= 100 nats per image.
want vae && train saved_models/vae_conv_mnist vae_conv mnist
# Issue 19: the GANs and DDPM on MNIST (Frechet distance in a LeNet-5's feature space at
# least 5x below a random generator's, mean confidence >= 0.8), then notebook 23's GANs on
# Fashion-MNIST.
want gan && { train saved_models/dcgan_mnist dcgan mnist
  train saved_models/wgan_gp_mnist wgan_gp mnist; }
want ddpm && train saved_models/ddpm_unet_mnist ddpm_unet mnist
# Notebook 23's runs (DCGAN, WGAN-GP and the conditional GAN on Fashion-MNIST, scored
# every epoch): the notebook's own code trains what is missing, then the notebook itself
# is executed on the finished runs.
want ch23 && { mkdir -p saved_models/ch23_fashion_mnist
  echo "[$(date -u +%H:%M)] notebook 23's runs -> saved_models/ch23_fashion_mnist"
  MPLBACKEND=Agg $PY notebooks/drafts/23_gans.py >> saved_models/ch23_fashion_mnist/train.log 2>&1
  rc=$?; echo "[$(date -u +%H:%M)] notebook 23's runs exit $rc"; }
# Issue 14, notebook 08's runs (ResNet-20 pretrained on five CIFAR-10 classes, four ways to
# learn the other five from 50 and 250 labels per class): the notebook's own code trains
# what is missing, then the notebook itself is executed on the finished runs.
want ch08 && { mkdir -p saved_models/ch08_transfer
  echo "[$(date -u +%H:%M)] notebook 08's runs -> saved_models/ch08_transfer"
  MPLBACKEND=Agg $PY notebooks/08_transfer_learning.py >> saved_models/ch08_transfer/train.log 2>&1
  rc=$?; echo "[$(date -u +%H:%M)] notebook 08's runs exit $rc"; }
# Issue 14: ResNet-56 on CIFAR-10 with the ResNet recipe (paper: 93.03%). About 3.1x
# ResNet-20's computation per image: some 13 h on this 2-core CPU at ResNet-20's pace.
want resnet56 && train saved_models/resnet56_cifar10 resnet56 cifar10
echo "[$(date -u +%H:%M)] queue done"
