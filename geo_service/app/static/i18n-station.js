// The station page's own words, in both languages: they come with the page (station.js
// adds them to i18n.js's tables), not on the way to the first list (bench/APP_LOAD.md).
// Both languages have the same keys (tests/app/i18n.test.mjs checks).

export const STATION_WORDS = {
  zh: {
    address: "地址", awards: "荣誉", schedule: "流动站停靠安排", navigate: "导航",
    amap: "高德骑行", baidu: "百度骑行", tencent: "腾讯骑行", geo: "其他地图 (geo:)",
    report: "反馈", r_closed: "报告：已关闭", r_missing: "报告：缺少设施",
    r_confirm: "确认：正在营业", thanks: "已收到，谢谢！", already: "您已经反馈过了，谢谢！",
    confirmed_ok: "已确认，谢谢！", notfound: "找不到这个驿站。",
    st_offline: (asOf) => `离线：按手机上保存的数据显示，数据截至 ${asOf}`,
    st_not_kept: "没有网络，手机上保存的数据里没有这个驿站：有网络时再打开。",
    st_feedback_offline: "地址、电话和反馈需要网络。",
    // Its open line, where it is from the rider, its small map and the word that replaced
    // an earlier one (issue 29, items 5, 6, 9).
    metres: (m) => (m < 1000 ? `${Math.round(m)} 米` : `${(m / 1000).toFixed(1)} 公里`),
    where: (dir, dist, gps) => `${gps ? "距您的位置" : "距所选地点"}：${dir} ${dist}`,
    st_map: "驿站位置图", replaced: "已更新你刚才的反馈", baidu_web: "百度地图",
  },
  en: {
    address: "Address", awards: "Awards", schedule: "Mobile station schedule",
    navigate: "Navigate", amap: "Amap (ride)", baidu: "Baidu (ride)", tencent: "Tencent (ride)",
    geo: "Other map app (geo:)", report: "Feedback", r_closed: "Report: closed",
    r_missing: "Report: something missing", r_confirm: "Confirm: it is open",
    thanks: "Received, thank you!", already: "You already reported, thank you!",
    confirmed_ok: "Confirmed, thank you!", notfound: "No such station.",
    st_offline: (asOf) => `Offline: shown from the data on the phone, as of ${asOf}`,
    st_not_kept: "No network, and this station is not in the data on the phone: " +
      "open it again when online.",
    st_feedback_offline: "Address, phone and feedback need the network.",
    metres: (m) => (m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`),
    where: (dir, dist, gps) => `${dist} ${dir} of ${gps ? "you" : "the chosen point"}`,
    st_map: "Map of the station", replaced: "Your earlier word was replaced",
    baidu_web: "Baidu Maps",
  },
};
