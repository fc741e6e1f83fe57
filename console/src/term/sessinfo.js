// One reading of a DescribeSessions entry for the console's pages, so the
// API's field names are known in one place.

export function castUrl(id) {
  return `/console/sessions/${encodeURIComponent(id)}.cast`;
}

export function fields(s) {
  const exitCode = s.ExitCode === undefined || s.ExitCode === null ? null : Number(s.ExitCode);
  const live = s.State === 'LIVE';
  return {
    id: String(s.SessionId || ''),
    who: String(s.UserName || s.Uin || ''),
    instance: String(s.InstanceId || ''),
    login: String(s.LoginUser || ''),
    via: String(s.Via || ''),
    client: String(s.ClientAddress || ''),
    command: s.Command ? String(s.Command) : '',
    started: s.StartTime || null,
    ended: s.EndTime || null,
    durationMs: Number(s.DurationMs || 0),
    live,
    exitCode,
    exitText: [exitCode === null ? '' : `exit ${exitCode}`, s.EndReason || ''].filter(Boolean).join(' · '),
    bytesOut: Number(s.BytesOut || 0),
    bytesIn: Number(s.BytesIn || 0),
    truncated: !!s.Truncated,
    dropped: Number(s.DroppedBytes || 0),
  };
}

/** How long a session ran (or has run so far), as the server counted it. */
export function span(ms) {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60000);
  if (m < 60) return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
