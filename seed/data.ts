/**
 * Seed data for the Media Gateway context and three recommendation experiments: plain values, no code
 * from src/ (src/db/seed.ts turns them into rows). Every id and timestamp is fixed, so seeding twice
 * leaves exactly the same rows.
 */

/** Deterministic UUIDs, readable in logs: 5e ed for "seed", a group and a serial number. */
export const sid = (group: number, n: number) =>
  `5eed0000-${group.toString(16).padStart(4, '0')}-4000-8000-${n.toString(16).padStart(12, '0')}`;

export const T0 = new Date('2026-10-01T09:00:00.000Z');
export const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

export const users = [
  { id: sid(1, 1), username: 'alice', email: 'alice@example.com', createdAt: at(-40_000) },
  { id: sid(1, 2), username: 'bob', email: 'bob@example.com', createdAt: at(-30_000) },
  { id: sid(1, 3), username: 'charlie', email: 'charlie@example.com', createdAt: at(-20_000) },
  { id: sid(1, 4), username: 'diana', email: 'diana@example.com', createdAt: at(-10_000) },
];

export const contentItems = [
  { id: sid(2, 1), title: 'The Quiet Orbit', kind: 'movie', genres: ['sci-fi', 'drama'], releaseYear: 2024 },
  { id: sid(2, 2), title: 'Harbor Lights', kind: 'series', genres: ['drama', 'mystery'], releaseYear: 2023 },
  { id: sid(2, 3), title: 'Laugh Track', kind: 'series', genres: ['comedy'], releaseYear: 2021 },
  { id: sid(2, 4), title: 'Northern Run', kind: 'movie', genres: ['action', 'thriller'], releaseYear: 2025 },
  { id: sid(2, 5), title: 'Paper Gardens', kind: 'movie', genres: ['documentary'], releaseYear: 2022 },
  {
    id: sid(2, 6),
    title: 'Midnight Kitchen',
    kind: 'series',
    genres: ['comedy', 'drama'],
    releaseYear: 2026,
  },
  { id: sid(2, 7), title: 'Signal Lost', kind: 'movie', genres: ['sci-fi', 'thriller'], releaseYear: 2020 },
  {
    id: sid(2, 8),
    title: 'Wild Coast',
    kind: 'series',
    genres: ['documentary', 'nature'],
    releaseYear: 2025,
  },
] as const;

export const userPreferences = [
  {
    userId: sid(1, 1),
    favoriteGenres: ['sci-fi', 'thriller'],
    language: 'en',
    maturityRating: 'R',
    autoplay: true,
  },
  { userId: sid(1, 2), favoriteGenres: ['comedy'], language: 'en', maturityRating: 'PG-13', autoplay: false },
  {
    userId: sid(1, 3),
    favoriteGenres: ['documentary', 'nature'],
    language: 'de',
    maturityRating: 'PG',
    autoplay: true,
  },
  {
    userId: sid(1, 4),
    favoriteGenres: ['drama', 'mystery'],
    language: 'es',
    maturityRating: 'R',
    autoplay: true,
  },
];

export const playbackProgress = [
  { userId: sid(1, 1), contentId: sid(2, 1), positionSeconds: 5400, durationSeconds: 7200, completed: false },
  { userId: sid(1, 1), contentId: sid(2, 7), positionSeconds: 6300, durationSeconds: 6300, completed: true },
  { userId: sid(1, 2), contentId: sid(2, 3), positionSeconds: 900, durationSeconds: 1500, completed: false },
  { userId: sid(1, 3), contentId: sid(2, 5), positionSeconds: 4800, durationSeconds: 4800, completed: true },
  { userId: sid(1, 3), contentId: sid(2, 8), positionSeconds: 1200, durationSeconds: 3000, completed: false },
  { userId: sid(1, 4), contentId: sid(2, 2), positionSeconds: 2700, durationSeconds: 2700, completed: true },
].map((p) => ({ ...p, updatedAt: at(-60) }));

export interface SeedExperiment {
  id: string;
  key: string;
  name: string;
  description: string;
  status: 'draft' | 'running' | 'completed';
  trafficAllocation: number;
  startAt: Date | null;
  endAt: Date | null;
  createdAt: Date;
  variants: {
    id: string;
    name: string;
    weight: number;
    isControl: boolean;
    config: Record<string, unknown>;
  }[];
  /** How many synthetic units (devices) besides the four users take part; 0 for drafts. */
  units: number;
  /** Conversion chance per variant index, and the watch-minutes scale of converting units. */
  conversionRates: number[];
  watchMinutes: number[];
}

export const experiments: SeedExperiment[] = [
  {
    id: sid(3, 1),
    key: 'homepage-recs-collaborative',
    name: 'Homepage recommendations: collaborative filtering',
    description:
      'Does item-to-item collaborative filtering beat the popularity baseline on the homepage rail?',
    status: 'running',
    trafficAllocation: 1,
    startAt: at(0),
    endAt: null,
    createdAt: at(-120),
    variants: [
      {
        id: sid(4, 1),
        name: 'control',
        weight: 0.5,
        isControl: true,
        config: { strategy: 'popularity', railSize: 20 },
      },
      {
        id: sid(4, 2),
        name: 'collaborative',
        weight: 0.5,
        isControl: false,
        config: { strategy: 'item-item-cf', railSize: 20, neighbours: 50 },
      },
    ],
    units: 400,
    conversionRates: [0.3, 0.42],
    watchMinutes: [38, 47],
  },
  {
    id: sid(3, 2),
    key: 'continue-watching-ranking',
    name: 'Continue watching: completion-likelihood ranking',
    description: 'Rank the continue-watching row by predicted completion instead of recency.',
    status: 'draft',
    trafficAllocation: 0.5,
    startAt: null,
    endAt: null,
    createdAt: at(-60),
    variants: [
      { id: sid(4, 3), name: 'recency', weight: 1, isControl: true, config: { ranking: 'recency' } },
      {
        id: sid(4, 4),
        name: 'completion',
        weight: 1,
        isControl: false,
        config: { ranking: 'completion-model', modelVersion: 'v3' },
      },
      {
        id: sid(4, 5),
        name: 'hybrid',
        weight: 1,
        isControl: false,
        config: { ranking: 'hybrid', recencyWeight: 0.4 },
      },
    ],
    units: 0,
    conversionRates: [],
    watchMinutes: [],
  },
  {
    id: sid(3, 3),
    key: 'genre-affinity-boost',
    name: 'Genre affinity boost',
    description: 'Boost titles from the viewer’s favourite genres in search results.',
    status: 'completed',
    trafficAllocation: 0.8,
    startAt: at(-30_000),
    endAt: at(-1_000),
    createdAt: at(-31_000),
    variants: [
      { id: sid(4, 6), name: 'baseline', weight: 0.5, isControl: true, config: { boost: 0 } },
      {
        id: sid(4, 7),
        name: 'boosted',
        weight: 0.5,
        isControl: false,
        config: { boost: 1.5, genres: 'favorites' },
      },
    ],
    units: 500,
    conversionRates: [0.25, 0.3],
    watchMinutes: [30, 33],
  },
];
