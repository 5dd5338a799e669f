"""Offline evaluation of the For You ranker: a seeded simulator of viewers with hidden tastes, a CSV loader for real
interaction logs, and a time-split replay that reports recall@K, NDCG@K, coverage and novelty against a
region-popularity baseline (`livecore-feeds-eval`)."""
