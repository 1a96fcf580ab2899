/** One row of the event feed, as every reader sees it (the feed, its streams, webhooks). */
export interface PlatformEvent {
  seq: number;
  at: string;
  kind: string;
  projectId: string | null;
  subjectId: string;
  data: Record<string, unknown>;
}
