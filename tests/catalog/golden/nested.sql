SELECT * FROM (VALUES
  ('A000000000001', 'line one' || chr(10) || 'line two', ['샴푸', 'tonic'], {'k': 'v', 'n': [1, 2]}, NULL::INTEGER, true, 4.5::DOUBLE, TIMESTAMPTZ '2026-01-05 03:00:00+00', 'a|b'),
  ('A000000000002', 'tab' || chr(9) || 'end', []::VARCHAR[], NULL, 7, false, NULL, NULL, repeat('긴', 30))
) t(goods_no, note, tags, meta, n, flag, rating, seen_at, pipe) ORDER BY goods_no
