import { useState } from 'react';
import {
  Bar,
  BarChart,
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';

import { query } from '../api.js';
import { Heading, Loading, Problem, duration, useApi } from '../ui.jsx';

const PERIODS = [
  [30, 'Last 30 days'],
  [90, 'Last 90 days'],
  [182, 'Last 6 months'],
  [365, 'Last year'],
];

const HOUR = 3_600_000;
const hours = (ms) => Math.round((ms / HOUR) * 100) / 100;
const percent = (rate) => `${(rate * 100).toFixed(1)} %`;

/** The period's first day, `days` before today (UTC), as `YYYY-MM-DD`. */
function since(days) {
  const from = new Date(Date.now() - days * 86_400_000);
  return from.toISOString().slice(0, 10);
}

/**
 * How long requests take and where the time goes, from `GET /insights/lead-time`: each
 * item's figures, lead time by week, the items that went from manual to automated with
 * the reduction, the slowest items and the service levels missed. Admins see every
 * request, team members their teams', everyone their own.
 */
export function Insights({ onUnauthorized }) {
  const [days, setDays] = useState(182);
  const [item, setItem] = useState('');
  const from = since(days);
  const byItem = useApi(`/insights/lead-time${query({ from, groupBy: 'item' })}`, { onUnauthorized });
  const byWeek = useApi(`/insights/lead-time${query({ from, groupBy: 'week', item: item || null })}`, {
    onUnauthorized,
  });
  const data = byItem.data;
  const groups = data?.groups || [];
  const weeks = (byWeek.data?.groups || []).map((g) => ({
    week: g.key,
    p50: hours(g.leadTime.p50Ms),
    p90: hours(g.leadTime.p90Ms),
  }));
  const switches = (data?.switches || []).map((s) => ({
    ...s,
    manual: hours(s.before.leadTime.p50Ms),
    automated: hours(s.after.leadTime.p50Ms),
  }));
  const slowest = [...groups]
    .sort((a, b) => b.leadTime.p90Ms - a.leadTime.p90Ms)
    .slice(0, 10)
    .map((g) => ({ item: g.key, p90: hours(g.leadTime.p90Ms), p50: hours(g.leadTime.p50Ms) }));
  const breaches = groups.filter((g) => g.breached > 0).map((g) => ({ item: g.key, missed: g.breached }));

  return (
    <>
      <Heading>Insights</Heading>
      <p className="muted">
        Lead time of the requests submitted in the period: from submission to the end, and where the time went.
      </p>
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <div className="field">
          <label htmlFor="insights-period">Period</label>
          <select id="insights-period" value={days} onChange={(e) => setDays(Number(e.target.value))}>
            {PERIODS.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="insights-item">Item for the weekly chart</label>
          <select id="insights-item" value={item} onChange={(e) => setItem(e.target.value)}>
            <option value="">All items</option>
            {groups.map((g) => (
              <option key={g.key} value={g.key}>
                {g.key}
              </option>
            ))}
          </select>
        </div>
      </form>
      <Problem error={byItem.error || byWeek.error} />
      {byItem.loading && !data ? (
        <Loading />
      ) : !data?.overall?.ended ? (
        <p>No request submitted in the period has ended yet.</p>
      ) : (
        <>
          <p className="summary">
            <strong>{data.overall.ended}</strong> requests ended ({percent(data.overall.successRate)} completed), median
            lead time <strong>{duration(data.overall.leadTime.p50Ms)}</strong>, 90th percentile{' '}
            <strong>{duration(data.overall.leadTime.p90Ms)}</strong>
            {data.open ? `; ${data.open} still open` : ''}.
          </p>

          {switches.length > 0 && (
            <section aria-labelledby="switches-heading">
              <h2 id="switches-heading">Manual against automated</h2>
              <Chart label="Median lead time in hours by hand and automated, per item">
                <BarChart data={switches} accessibilityLayer>
                  <CartesianGrid strokeDasharray="3 3" />
                  <XAxis dataKey="target" />
                  <YAxis unit=" h" />
                  <Tooltip />
                  <Legend />
                  <Bar dataKey="manual" name="By hand (p50)" fill="#b45309" />
                  <Bar dataKey="automated" name="Automated (p50)" fill="#047857" />
                </BarChart>
              </Chart>
              <table className="list switches">
                <caption className="visually-hidden">Items switched from manual to automated</caption>
                <thead>
                  <tr>
                    <th scope="col">Item</th>
                    <th scope="col">Automated since</th>
                    <th scope="col">By hand (p50)</th>
                    <th scope="col">Automated (p50)</th>
                    <th scope="col">Reduction</th>
                  </tr>
                </thead>
                <tbody>
                  {switches.map((s) => (
                    <tr key={s.target}>
                      <td>{s.target}</td>
                      <td>{s.switchedAt.slice(0, 10)}</td>
                      <td>{duration(s.before.leadTime.p50Ms)}</td>
                      <td>{duration(s.after.leadTime.p50Ms)}</td>
                      <td className="reduction">{s.medianReductionPercent} %</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </section>
          )}

          <section aria-labelledby="weeks-heading">
            <h2 id="weeks-heading">Lead time over time{item ? ` of ${item}` : ''}</h2>
            <Chart label="Lead time in hours per week of submission, median and 90th percentile">
              <LineChart data={weeks} accessibilityLayer>
                <CartesianGrid strokeDasharray="3 3" />
                <XAxis dataKey="week" />
                <YAxis unit=" h" />
                <Tooltip />
                <Legend />
                <Line type="monotone" dataKey="p50" name="Median" stroke="#1d4ed8" dot={false} isAnimationActive={false} />
                <Line type="monotone" dataKey="p90" name="90th percentile" stroke="#9333ea" dot={false} isAnimationActive={false} />
              </LineChart>
            </Chart>
          </section>

          <section aria-labelledby="slowest-heading">
            <h2 id="slowest-heading">The slowest items</h2>
            <Chart label="Lead time in hours of the slowest items, 90th percentile and median">
              <BarChart data={slowest} layout="vertical" accessibilityLayer>
                <CartesianGrid strokeDasharray="3 3" />
                <XAxis type="number" unit=" h" />
                <YAxis type="category" dataKey="item" width={180} />
                <Tooltip />
                <Legend />
                <Bar dataKey="p90" name="90th percentile" fill="#9333ea" isAnimationActive={false} />
                <Bar dataKey="p50" name="Median" fill="#1d4ed8" isAnimationActive={false} />
              </BarChart>
            </Chart>
          </section>

          <section aria-labelledby="breaches-heading">
            <h2 id="breaches-heading">Service levels missed</h2>
            {breaches.length ? (
              <Chart label="Requests that missed a service level target, per item">
                <BarChart data={breaches} accessibilityLayer>
                  <CartesianGrid strokeDasharray="3 3" />
                  <XAxis dataKey="item" />
                  <YAxis allowDecimals={false} />
                  <Tooltip />
                  <Bar dataKey="missed" name="Requests that missed a target" fill="#b91c1c" isAnimationActive={false} />
                </BarChart>
              </Chart>
            ) : (
              <p>No request that ended in the period missed a service level.</p>
            )}
          </section>

          <section aria-labelledby="items-heading">
            <h2 id="items-heading">Every item</h2>
            <table className="list figures">
              <caption className="visually-hidden">Lead time per item</caption>
              <thead>
                <tr>
                  <th scope="col">Item</th>
                  <th scope="col">Ended</th>
                  <th scope="col">Completed</th>
                  <th scope="col">Median</th>
                  <th scope="col">90th percentile</th>
                  <th scope="col">With a person (p50)</th>
                  <th scope="col">Automated (p50)</th>
                  <th scope="col">Missed a service level</th>
                </tr>
              </thead>
              <tbody>
                {groups.map((g) => (
                  <tr key={g.key}>
                    <td>{g.key}</td>
                    <td>{g.ended}</td>
                    <td>{percent(g.successRate)}</td>
                    <td>{duration(g.leadTime.p50Ms)}</td>
                    <td>{duration(g.leadTime.p90Ms)}</td>
                    <td>{duration(g.parts.person.p50Ms)}</td>
                    <td>{duration(g.parts.automated.p50Ms)}</td>
                    <td>{g.breached}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
        </>
      )}
    </>
  );
}

/** A chart with its caption, sized to its column. */
function Chart({ label, children }) {
  return (
    <figure className="chart">
      <ResponsiveContainer width="100%" height={280}>
        {children}
      </ResponsiveContainer>
      <figcaption className="muted">{label}</figcaption>
    </figure>
  );
}
