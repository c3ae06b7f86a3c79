"""Log lines in PaddleVideo's format; epoch averages weighted by samples; logs in output_dir."""
import logging

import pytest

from paddlevideo.utils.logger import (AverageMeter, format_batch_line, format_epoch_line,
                                      log_to_files, setup_logger)


def test_batch_line_matches_paddlevideo():
    meters = [AverageMeter("loss"), AverageMeter("lr", ".6f"), AverageMeter("top1"),
              AverageMeter("top5")]
    for m, v in zip(meters, (6.07193, 0.02, 0.0, 0.0)):
        m.update(v, 2)
    line = format_batch_line(1, 50, "train", 0, meters, 15.75052, 0.09416, 0.12698, 79)
    assert line == ("epoch:[  1/50 ] train step:0    loss: 6.07193 lr: 0.020000 top1: 0.00000 "
                    "top5: 0.00000 batch_cost: 15.75052 sec, reader_cost: 0.09416 sec, ips: "
                    "0.12698 instance/sec, eta: 0:01:19")


def test_epoch_means_weight_each_sample_once():
    loss = AverageMeter("loss")
    loss.update(1.0, 16)
    loss.update(4.0, 4)                     # a small last batch
    assert loss.avg == pytest.approx((16 * 1.0 + 4 * 4.0) / 20)
    batch, reader = AverageMeter("batch_cost"), AverageMeter("reader_cost")
    for b, r in ((2.0, 0.1), (1.0, 0.3)):
        batch.update(b)
        reader.update(r)
    line = format_epoch_line(3, "train", [loss], batch, reader, samples=20)
    assert line.startswith("END epoch:3   train loss_avg: 1.60000 avg_batch_cost: 1.50000 sec, "
                           "avg_reader_cost: 0.20000 sec, batch_cost_sum: 3.00000 sec, ")
    assert line.endswith("avg_ips: 6.66667 instance/sec.")


def test_logger_writes_to_output_dir_and_only_rank0_at_info(tmp_path, capsys):
    logger = setup_logger(str(tmp_path / "out"), rank=0, filename="train.log")
    logger.info("hello from rank 0")
    assert "hello from rank 0" in (tmp_path / "out" / "train.log").read_text()
    logger = setup_logger(str(tmp_path / "out1"), rank=1)
    logger.info("quiet")
    logger.warning("loud")
    assert not (tmp_path / "out1").exists()
    out = capsys.readouterr().out
    assert "loud" in out and "quiet" not in out
    assert len([h for h in logger.handlers if getattr(h, "_paddlevideo", False)]) == 1
    setup_logger(None, rank=0)
    assert logging.getLogger("paddlevideo").level == logging.INFO


def test_failures_reach_the_log_file_without_repeating_on_the_console(tmp_path, capsys):
    """The command line prints a failure itself; log_to_files adds it to train.log only."""
    setup_logger(str(tmp_path), rank=0, filename="train.log")
    log_to_files("error: the data list is missing")
    assert "error: the data list is missing" in (tmp_path / "train.log").read_text()
    assert "the data list is missing" not in capsys.readouterr().out
    setup_logger(None, rank=0)
