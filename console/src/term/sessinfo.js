// One reading of a DescribeSessions entry for the console's pages, so the
// API's field names are known in one place.

export function castUrl(id) {
  return `/console/sessions/${encodeURIComponent(id)}.cast`;
}

export function fields(s) {
  const ended = s.EndTime || s.EndedTime || null;
  const state = String(s.State || s.SessionState || (ended ? 'ended' : 'active')).toLowerCase();
  const live = !ended && !['ended', 'closed', 'terminated', 'finished'].includes(state);
  const exitCode = s.ExitCode === undefined || s.ExitCode === null ? null : Number(s.ExitCode);
  const reason = s.EndReason || s.Reason || '';
  return {
    id: String(s.SessionId || ''),
    who: String(s.UserName || s.User || s.Uin || ''),
    instance: String(s.InstanceId || ''),
    login: String(s.LoginUser || s.Username || ''),
    via: String(s.Via || ''),
    client: String(s.ClientAddress || s.Client || s.ClientAddr || ''),
    command: s.Command ? String(s.Command) : '',
    started: s.StartTime || s.CreatedTime || s.StartedTime || null,
    ended,
    live,
    exitCode,
    exitText: [exitCode === null ? '' : `exit ${exitCode}`, reason].filter(Boolean).join(' · '),
    bytesOut: Number(s.BytesOut || s.OutputBytes || 0),
    bytesIn: Number(s.BytesIn || s.InputBytes || 0),
    truncated: !!s.Truncated,
    cols: Number(s.Cols || 0),
    rows: Number(s.Rows || 0),
  };
}
