import type { ReadingStore } from '../../agent/store/reading-store.js';

/** Counts the transactions a store commits: how well submissions were grouped. */
export function countCommits(store: ReadingStore): { readonly count: number } {
  const counter = { count: 0 };
  const commit = store.commit.bind(store);
  store.commit = (subs, receivedAt) => {
    counter.count++;
    return commit(subs, receivedAt);
  };
  return counter;
}
