"""The Python client's encoding of what it sends: CSV files cut into batches as they are, and
rows of pandas/numpy values (missing values, infinities) turned into JSON before sending."""

from __future__ import annotations

from mlops_portal_client.client import csv_batches


def test_a_csv_file_is_cut_into_batches_with_its_header_and_quoted_line_breaks_kept():
    data = b'id,note\r\n1,"two\nlines"\r\n2,plain\r\n\r\n3,"a ""quoted"" cell"'
    batches = list(csv_batches(data, 2))
    assert batches == [
        (b'id,note\r\n1,"two\nlines"\r\n2,plain\r\n', 2),
        (b'id,note\r\n3,"a ""quoted"" cell"\n', 1),
    ]
    assert list(csv_batches(b"id,note\n", 10)) == []
